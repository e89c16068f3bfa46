/**
 * Which Pinecone index holds which embedding model. Pure, tested without Pinecone.
 *
 * Every model (model key `<name>.v<version>`) has an index of its own, so a blue/green re-embed
 * writes a new index while the old one serves. Two environment variables say where:
 *
 * - `VECSYNC_PINECONE_INDEX`: the active model's index name (default `vecsync`), optionally
 *   followed by `<model key>=<index name>` entries for other models:
 *   `vecsync,hashing-384.v2=vecsync-v2`.
 * - `VECSYNC_PINECONE_HOST`: the active model's index host, optionally followed by
 *   `<model key>=<host>` entries: `https://vecsync-abc.svc.aped-1.pinecone.io,hashing-384.v2=https://...`.
 *
 * Host mode (any host configured): the sink never calls the control plane; it checks each index
 * with `describe_index_stats`, and a model without a host is a ConfigError that names the
 * variable. Name mode (no host): a model without an explicit name uses `<active index name>-<model
 * key slug>` (`vecsync-hashing-384-v2`); the control plane resolves the name to its host and
 * creates a missing index (serverless, cosine, the model's dimensions).
 */
import { ConfigError } from '../../../domain/errors.ts';

const MODEL_KEY = /^[a-z0-9][a-z0-9-]*\.v[1-9][0-9]*$/;
/** Pinecone index names: lowercase letters, digits and `-`, at most 45 characters. */
const INDEX_NAME = /^[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?$/;

export interface IndexTargets {
  /** The model key of VECSYNC_EMBEDDING_MODEL / VECSYNC_EMBEDDING_VERSION. */
  activeModelKey: string;
  /** The active model's index name: the bare entry of VECSYNC_PINECONE_INDEX. */
  baseName: string;
  /** Index names by model key (the active model's included). */
  names: Record<string, string>;
  /** Index hosts by model key. Not empty: host mode. */
  hosts: Record<string, string>;
}

export interface IndexTarget {
  modelKey: string;
  name: string;
  /** Absent in name mode: the control plane resolves `name`. */
  host?: string;
}

interface Entry {
  modelKey: string | undefined;
  value: string;
}

function entries(variable: string, raw: string): Entry[] {
  const out: Entry[] = [];
  let bare = 0;
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq).trim() : '';
    if (eq > 0 && MODEL_KEY.test(key)) {
      out.push({ modelKey: key, value: entry.slice(eq + 1).trim() });
    } else {
      if (++bare > 1) {
        throw new ConfigError(
          `invalid ${variable}=${JSON.stringify(raw)}: more than one entry without a model key (use <model key>=<value>)`,
        );
      }
      out.push({ modelKey: undefined, value: entry });
    }
  }
  return out;
}

function checkHost(raw: string, host: string): string {
  // The SDK prefixes https:// to a host without a scheme; a local server needs http://.
  const url = /^https?:\/\//.test(host) ? host : `https://${host}`;
  try {
    const parsed = new URL(url);
    if (parsed.search || parsed.hash) throw new Error('no query or fragment');
  } catch {
    throw new ConfigError(
      `invalid VECSYNC_PINECONE_HOST=${JSON.stringify(raw)}: ${JSON.stringify(host)} is not a host`,
    );
  }
  return host.replace(/\/+$/, '');
}

function checkName(raw: string, name: string): string {
  if (!INDEX_NAME.test(name)) {
    throw new ConfigError(
      `invalid VECSYNC_PINECONE_INDEX=${JSON.stringify(raw)}: ${JSON.stringify(name)} is not a Pinecone index name ` +
        '(lowercase letters, digits and -, at most 45)',
    );
  }
  return name;
}

/** Parses VECSYNC_PINECONE_INDEX and VECSYNC_PINECONE_HOST; throws ConfigError naming the variable. */
export function parseIndexTargets(input: { activeModelKey: string; index: string; host: string }): IndexTargets {
  const names: Record<string, string> = {};
  const hosts: Record<string, string> = {};
  let baseName = 'vecsync';
  for (const entry of entries('VECSYNC_PINECONE_INDEX', input.index)) {
    const name = checkName(input.index, entry.value);
    if (entry.modelKey === undefined) baseName = name;
    else names[entry.modelKey] = name;
  }
  names[input.activeModelKey] ??= baseName;
  for (const entry of entries('VECSYNC_PINECONE_HOST', input.host)) {
    hosts[entry.modelKey ?? input.activeModelKey] = checkHost(input.host, entry.value);
  }
  return { activeModelKey: input.activeModelKey, baseName, names, hosts };
}

/** `hashing-384.v2` → `hashing-384-v2`. */
export function modelKeySlug(modelKey: string): string {
  return modelKey
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
}

export function hostMode(targets: IndexTargets): boolean {
  return Object.keys(targets.hosts).length > 0;
}

/** Where a model's vectors live; throws ConfigError when the configuration cannot say. */
export function resolveTarget(targets: IndexTargets, modelKey: string): IndexTarget {
  const host = targets.hosts[modelKey];
  const explicit = targets.names[modelKey];
  if (hostMode(targets) && host === undefined) {
    throw new ConfigError(
      `pinecone sink: no index host for model ${modelKey}; add ${modelKey}=<host> to VECSYNC_PINECONE_HOST ` +
        '(with a host configured the sink never calls the control plane)',
    );
  }
  const name = explicit ?? `${targets.baseName}-${modelKeySlug(modelKey)}`;
  if (!INDEX_NAME.test(name)) {
    throw new ConfigError(
      `pinecone sink: the derived index name ${JSON.stringify(name)} of model ${modelKey} is not valid; ` +
        `add ${modelKey}=<index name> to VECSYNC_PINECONE_INDEX`,
    );
  }
  return host === undefined ? { modelKey, name } : { modelKey, name, host };
}
