/**
 * The alert rules pass `promtool check rules` and their unit tests (`promtool test rules`), every
 * alert has a case where it must fire and one where it must not, and the unit tests catch a
 * changed threshold (so they can fail).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ALERTS_FILE, MONITORING, alertRules, binaryOrSkip, loadRules, toYaml, withKnobs } from './support.ts';

const run = promisify(execFile);
const TESTS_FILE = path.join(MONITORING, 'alerts.test.yml');

async function promtool(bin: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(bin, args, { cwd });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

test('promtool check rules accepts alerts.yml', async (t) => {
  const bin = binaryOrSkip(t, 'promtool');
  if (!bin) return;
  const { code, out } = await promtool(bin, ['check', 'rules', ALERTS_FILE], MONITORING);
  assert.equal(code, 0, out);
  assert.match(out, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: the unit tests of alerts.yml pass', async (t) => {
  const bin = binaryOrSkip(t, 'promtool');
  if (!bin) return;
  const { code, out } = await promtool(bin, ['test', 'rules', TESTS_FILE], MONITORING);
  assert.equal(code, 0, out);
  assert.match(out, /SUCCESS/);
});

test('every alert has a unit-test case where it fires and one where it does not', () => {
  const cases = (
    YAML.parse(readFileSync(TESTS_FILE, 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    }
  ).tests.flatMap((c) => c.alert_rule_test ?? []);
  for (const rule of alertRules()) {
    const mine = cases.filter((c) => c.alertname === rule.alert);
    assert.ok(
      mine.some((c) => (c.exp_alerts ?? []).length > 0),
      `${rule.alert}: no case where it must fire`,
    );
    assert.ok(
      mine.some((c) => (c.exp_alerts ?? []).length === 0),
      `${rule.alert}: no case where it must not fire`,
    );
  }
});

test('every alert has a severity, a for: and a runbook_url into docs/runbook.md', () => {
  for (const rule of alertRules()) {
    assert.match(rule.labels?.severity ?? '', /^(warning|critical)$/, `${rule.alert}: severity`);
    assert.ok(rule.for, `${rule.alert}: for:`);
    assert.equal(
      rule.annotations?.runbook_url,
      `docs/runbook.md#${rule.alert!.toLowerCase()}`,
      `${rule.alert}: runbook_url`,
    );
  }
});

test('the unit tests fail when a threshold moves (they can fail)', async (t) => {
  const bin = binaryOrSkip(t, 'promtool');
  if (!bin) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'vecsync-rules-'));
  try {
    copyFileSync(TESTS_FILE, path.join(dir, 'alerts.test.yml'));
    writeFileSync(
      path.join(dir, 'alerts.yml'),
      toYaml(withKnobs(loadRules(), { thresholds: { freshness_slo_seconds: 100000 } })),
    );
    const { code, out } = await promtool(bin, ['test', 'rules', 'alerts.test.yml'], dir);
    assert.notEqual(code, 0, 'promtool test rules passed against a rules file with a changed threshold');
    assert.match(out, /VecsyncFreshnessSLOBreached/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
