/**
 * Unique names per test, so tests never share a tenant, topic or consumer group and can run in
 * any order against one shared stack.
 */
import { randomBytes } from 'node:crypto';

/** `<label>_<time>_<random>`: lowercase letters, digits and `_` (valid as tenant id, topic, group, database name). */
export function uniqueId(label = 'test'): string {
  const safe = label
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 24);
  return `${safe}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export interface TestIds {
  tenant: string;
  topic: string;
  group: string;
}

/** A tenant, a topic and a consumer group of one test. */
export function testIds(label: string): TestIds {
  const id = uniqueId(label);
  return { tenant: `tenant_${id}`, topic: `test.${id}`, group: `test.${id}` };
}
