-- pgvector for the sink database. The extension goes to schema public so every session finds the
-- `vector` type; the chunk tables (one per embedding model) are created at runtime by the sink.

-- Up Migration

CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;

-- Down Migration

-- RESTRICT (the default): refuses while chunk tables of any model still use the type.
DROP EXTENSION IF EXISTS vector;
