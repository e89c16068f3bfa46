/**
 * The Debezium connector's configuration: the template in connectors/ with `{{NAME}}`
 * placeholders, rendered from the validated configuration. Pure functions, except
 * `loadConnectorTemplate` which reads the file.
 *
 * `{{...}}` was chosen because `${...}` already means something twice in a connector config:
 * Kafka Connect config providers (`${provider:path:key}`) and the outbox router's
 * `${routedByValue}`.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../../config/index.ts';
import { ConfigError } from '../../domain/errors.ts';
import { assetPath } from '../../domain/assets.ts';

export const CONNECTOR_TEMPLATE_PATH = assetPath('connectors', 'vecsync-outbox.json');

export interface ConnectorTemplate {
  name: string;
  config: Record<string, string>;
}

export interface RenderedConnector {
  name: string;
  config: Record<string, string>;
}

/** Values substituted for the template's placeholders. */
export interface ConnectorParams {
  CONNECTOR_NAME: string;
  DB_HOST: string;
  DB_PORT: string;
  DB_NAME: string;
  DB_USER: string;
  DB_PASSWORD: string;
  TOPIC_PREFIX: string;
  /** The topic prefix escaped for a Java regex (TopicNameMatches predicates). */
  TOPIC_PREFIX_REGEX: string;
  SLOT_NAME: string;
}

/** `<prefix>-outbox`, e.g. `vecsync-outbox`. */
export function connectorName(topicPrefix: string): string {
  return `${topicPrefix}-outbox`;
}

/**
 * `<prefix>_outbox` reduced to what PostgreSQL accepts in a slot name (lowercase letters, digits,
 * underscore; at most 63 bytes), e.g. `vecsync_outbox`. Slots are per server, so two pipelines with
 * different prefixes on one server get different slots.
 */
export function slotName(topicPrefix: string): string {
  return `${topicPrefix.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_outbox`.slice(0, 63);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
}

export function connectorParams(config: Pick<Config, 'sourceUrl' | 'topicPrefix'>): ConnectorParams {
  let url: URL;
  try {
    url = new URL(config.sourceUrl);
  } catch (error) {
    throw new ConfigError('invalid VECSYNC_SOURCE_URL: not a URL', { cause: error });
  }
  const dbName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (dbName === '') throw new ConfigError('invalid VECSYNC_SOURCE_URL: no database name');
  return {
    CONNECTOR_NAME: connectorName(config.topicPrefix),
    DB_HOST: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    DB_PORT: url.port || '5432',
    DB_NAME: dbName,
    DB_USER: decodeURIComponent(url.username) || 'postgres',
    DB_PASSWORD: decodeURIComponent(url.password),
    TOPIC_PREFIX: config.topicPrefix,
    TOPIC_PREFIX_REGEX: escapeRegex(config.topicPrefix),
    SLOT_NAME: slotName(config.topicPrefix),
  };
}

const PLACEHOLDER = /\{\{([A-Z0-9_]+)\}\}/g;

function substitute(value: string, params: ConnectorParams, where: string): string {
  return value.replace(PLACEHOLDER, (_, key: string) => {
    if (!Object.hasOwn(params, key)) {
      throw new ConfigError(`connector template: unknown placeholder {{${key}}} in ${where}`);
    }
    return params[key as keyof ConnectorParams];
  });
}

/** Substitutes every placeholder; an unknown one is an error, so a typo cannot reach Connect. */
export function renderConnector(template: ConnectorTemplate, params: ConnectorParams): RenderedConnector {
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries(template.config)) {
    if (typeof value !== 'string') {
      throw new ConfigError(`connector template: ${key} must be a string (Connect stores every value as one)`);
    }
    config[substitute(key, params, key)] = substitute(value, params, key);
  }
  return { name: substitute(template.name, params, 'name'), config };
}

export function parseConnectorTemplate(text: string): ConnectorTemplate {
  const parsed = JSON.parse(text) as unknown;
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    typeof (parsed as ConnectorTemplate).name !== 'string' ||
    typeof (parsed as ConnectorTemplate).config !== 'object' ||
    (parsed as ConnectorTemplate).config === null
  ) {
    throw new ConfigError('connector template: expected {"name": string, "config": {...}}');
  }
  return parsed as ConnectorTemplate;
}

export async function loadConnectorTemplate(file: string = CONNECTOR_TEMPLATE_PATH): Promise<ConnectorTemplate> {
  return parseConnectorTemplate(await readFile(file, 'utf8'));
}

/** The rendered connector for this configuration. */
export async function renderConnectorFromConfig(
  config: Pick<Config, 'sourceUrl' | 'topicPrefix'>,
): Promise<RenderedConnector> {
  return renderConnector(await loadConnectorTemplate(), connectorParams(config));
}

/**
 * Keys whose value differs between the live config (GET /connectors/<name>/config) and the
 * desired one, ignoring `name` which Connect adds. Empty: applying would change nothing.
 */
export function configDifferences(live: Record<string, string>, desired: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(live), ...Object.keys(desired)]);
  keys.delete('name');
  return [...keys].filter((k) => live[k] !== desired[k]).sort();
}

/** The config with secrets masked, for output. */
export function redactConnectorConfig(config: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, /password|secret|api\.key/i.test(k) && v !== '' ? '<redacted>' : v]),
  );
}
