/**
 * Helpers of the monitoring tests: the Prometheus binaries, the rules file and its knobs, and the
 * metric names the services export.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import YAML from 'yaml';
import { underCi } from '../support/stack.ts';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const MONITORING = path.join(REPO, 'deploy', 'monitoring');
export const ALERTS_FILE = path.join(MONITORING, 'alerts.yml');

/** Debian's packages (`prometheus`, `prometheus-alertmanager`) install these. */
export const BINARIES = {
  prometheus: '/usr/bin/prometheus',
  promtool: '/usr/bin/promtool',
  alertmanager: '/usr/bin/prometheus-alertmanager',
} as const;

/**
 * The binary's path, or a loud skip on a developer machine without it. Under CI a missing binary
 * is a failure: `.ci/run` installs both packages.
 */
export function binaryOrSkip(t: TestContext, name: keyof typeof BINARIES): string | undefined {
  const file = BINARIES[name];
  if (existsSync(file)) return file;
  const why = `${file} not found (Debian package ${name === 'alertmanager' ? 'prometheus-alertmanager' : 'prometheus'})`;
  if (underCi()) throw new Error(why);
  t.skip(`SKIPPED (CI not set): ${why}`);
  return undefined;
}

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleFile {
  groups: { name: string; interval?: string; rules: Rule[] }[];
}

export function loadRules(file = ALERTS_FILE): RuleFile {
  return YAML.parse(readFileSync(file, 'utf8')) as RuleFile;
}

export function alertRules(rules: RuleFile = loadRules()): Rule[] {
  return rules.groups.flatMap((g) => g.rules.filter((r) => r.alert));
}

/**
 * The documented knobs applied to a copy of the rules: threshold constants (the
 * `vecsync:threshold:<name>` recording rules) and `for:` per alert. Unknown names throw, so a
 * renamed knob cannot be silently ignored.
 */
export function withKnobs(
  rules: RuleFile,
  knobs: { thresholds?: Record<string, number>; for?: Record<string, string> },
): RuleFile {
  const copy = structuredClone(rules);
  const all = copy.groups.flatMap((g) => g.rules);
  for (const [name, value] of Object.entries(knobs.thresholds ?? {})) {
    const rule = all.find((r) => r.record === `vecsync:threshold:${name}`);
    if (!rule) throw new Error(`no threshold vecsync:threshold:${name} in the rules`);
    rule.expr = `vector(${value})`;
  }
  for (const [alert, duration] of Object.entries(knobs.for ?? {})) {
    const rule = all.find((r) => r.alert === alert);
    if (!rule) throw new Error(`no alert ${alert} in the rules`);
    rule.for = duration;
  }
  return copy;
}

export function toYaml(rules: RuleFile): string {
  return YAML.stringify(rules, { lineWidth: 0 });
}

/** GitHub's anchor for a Markdown heading: lowercase, punctuation dropped, spaces to dashes. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
