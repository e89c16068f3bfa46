/**
 * Structured logging (pino). Secret configuration values and restricted document fields are
 * redacted by path, so a careless `log.info({ doc })` cannot leak them.
 */
import { pino, type Logger } from 'pino';

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
  'headers["api-key"]',
];

export function createLogger(level: string, name = 'vecsync'): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination(2));
}
