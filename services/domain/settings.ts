/**
 * Declared settings: each environment variable is declared once, with its schema, default and
 * documentation, at the place that reads it (a sink or embedder declares its own section). The
 * root configuration (services/config) nests these sections into one tree; `Settled<tree>` is the
 * type of the validated configuration, so there is no hand-written `Config` to keep in step.
 *
 * Pure: `settle` takes the environment as an argument; only services/config passes process.env.
 */
import type { z } from 'zod';
import { ConfigError, redactSecrets } from './errors.ts';

/** Values settled so far, by variable name: later defaults may derive from earlier ones (ports). */
export type SettledSoFar = Readonly<Record<string, unknown>>;

export interface Setting<S extends z.ZodType = z.ZodType> {
  readonly kind: 'setting';
  /** The environment variable. */
  readonly env: string;
  readonly schema: S;
  /** Used when the variable is unset or empty; a function sees the variables settled before it. */
  readonly default?: string | ((settled: SettledSoFar) => string);
  /** Never printed: `config` output, errors and logs show `<redacted>`. */
  readonly secret?: boolean;
  /** The user documentation of the variable (`vecsync config --markdown`). */
  readonly doc: string;
}

export function setting<S extends z.ZodType>(spec: Omit<Setting<S>, 'kind'>): Setting<S> {
  return { kind: 'setting', ...spec };
}

export interface SettingsTree {
  readonly [key: string]: Setting | SettingsTree;
}

/** The validated values of a tree of settings, shaped like the tree. */
export type Settled<T> = T extends Setting<infer S> ? z.output<S> : { -readonly [K in keyof T]: Settled<T[K]> };

function isSetting(node: Setting | SettingsTree): node is Setting {
  return (node as Setting).kind === 'setting';
}

/** Every setting of a tree in declaration order, with its path (`sink.pgvector.url`). */
export function listSettings(tree: SettingsTree, prefix = ''): { path: string; setting: Setting }[] {
  return Object.entries(tree).flatMap(([key, node]) =>
    isSetting(node) ? [{ path: prefix + key, setting: node }] : listSettings(node, `${prefix}${key}.`),
  );
}

/**
 * Validates every setting of `tree` against `env`, in declaration order. Throws a ConfigError naming
 * the first bad variable; a secret's value is never part of the message, and a URL's password is
 * masked.
 */
export function settle<T extends SettingsTree>(tree: T, env: Readonly<Record<string, string | undefined>>): Settled<T> {
  const settled: Record<string, unknown> = {};
  const walk = (node: SettingsTree): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(node)) {
      if (!isSetting(child)) {
        out[key] = walk(child);
        continue;
      }
      const given = env[child.env];
      const raw =
        given !== undefined && given !== ''
          ? given
          : typeof child.default === 'function'
            ? child.default(settled)
            : child.default;
      const result = child.schema.safeParse(raw);
      if (!result.success) {
        const why = result.error.issues.map((i) => i.message).join('; ');
        throw new ConfigError(`invalid ${child.env}=${shown(child, raw)}: ${why}`);
      }
      settled[child.env] = result.data;
      out[key] = result.data;
    }
    return out;
  };
  return walk(tree) as Settled<T>;
}

/** The variables and their effective values, as an operator may see them (secrets redacted). */
export function describeSettings(tree: SettingsTree, config: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { path, setting: s } of listSettings(tree)) {
    const value = path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
    out[s.env] = s.secret ? (value ? '<redacted>' : value) : typeof value === 'string' ? redactSecrets(value) : value;
  }
  return out;
}

function shown(s: Setting, raw: unknown): string {
  if (s.secret) return '<redacted>';
  return redactSecrets(JSON.stringify(raw));
}
