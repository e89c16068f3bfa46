/**
 * Structured logging (pino). Secret configuration values and restricted document fields are
 * redacted by path, so a careless `log.info({ doc })` cannot leak them.
 */
import { pino, type Logger } from 'pino';
import { redactSecrets } from '../../domain/errors.ts';

export type { Logger };

const REDACT_PATHS = [
  'restricted',
  '*.restricted',
  '*.*.restricted',
  'body',
  '*.body',
  'apiKey',
  '*.apiKey',
  'password',
  '*.password',
  'PINECONE_API_KEY',
  'VECSYNC_OPENAI_API_KEY',
  'headers.authorization',
  'headers.Authorization',
  'headers["api-key"]',
  'headers["Api-Key"]',
  'authorization',
  'connectionString',
  '*.connectionString',
  'database.password',
  '*["database.password"]',
  'VECSYNC_SOURCE_URL',
  'VECSYNC_PGVECTOR_URL',
];

/** Strings anywhere in a log object, with URL passwords, tokens and registered secrets removed. */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value instanceof Error) return { type: value.name, message: redactSecrets(value.message) };
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v, depth + 1)]));
}

/**
 * Paths name the fields that are secret by nature; `scrub` catches the secret that hides in a free
 * text field (a database URL quoted in an error, an API key echoed by a server).
 */
export function loggerOptions(level: string, name = 'vecsync'): pino.LoggerOptions {
  return {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { log: (object) => scrub(object) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)) as Parameters<typeof method>,
        );
      },
    },
  };
}

export function createLogger(level: string, name = 'vecsync'): Logger {
  return pino(loggerOptions(level, name), pino.destination(2));
}
