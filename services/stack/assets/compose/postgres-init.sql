-- Databases of the vecsync stack, as `vecsync stack up` creates them on the local stack.
-- Run once by the pgvector image's entrypoint on an empty data volume (POSTGRES_DB creates vecsync).
CREATE DATABASE vecsync_vectors;
CREATE DATABASE apicurio;
\connect vecsync_vectors
CREATE EXTENSION IF NOT EXISTS vector;
