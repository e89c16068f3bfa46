import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextBaseline, planMaintenance, rowsChangedSinceBuild, type TableSample } from './plan.ts';

const sample = (over: Partial<TableSample> = {}): TableSample => ({
  tableOid: 10,
  liveRows: 100,
  changesTotal: 500,
  modifiedSinceAnalyze: 0,
  lastAnalyzeAt: null,
  ...over,
});
const thresholds = { reindexRows: 300, analyzeRows: 50 };

test('rows changed since the build count from the stored baseline of the same table', () => {
  const built = new Date('2026-01-01T00:00:00Z');
  const baseline = nextBaseline(sample(), { tableOid: 10, changesAtBuild: 400, lastIndexBuildAt: built });
  assert.deepEqual(baseline, { changesAtBuild: 400, lastIndexBuildAt: built });
  assert.equal(rowsChangedSinceBuild(sample(), baseline), 100);
});

test('a re-created table or reset statistics start again from zero', () => {
  const built = new Date();
  assert.deepEqual(nextBaseline(sample(), { tableOid: 11, changesAtBuild: 400, lastIndexBuildAt: built }), {
    changesAtBuild: 0,
    lastIndexBuildAt: null,
  });
  const reset = nextBaseline(sample({ changesTotal: 20 }), {
    tableOid: 10,
    changesAtBuild: 400,
    lastIndexBuildAt: built,
  });
  assert.equal(rowsChangedSinceBuild(sample({ changesTotal: 20 }), reset), 20);
  assert.deepEqual(nextBaseline(sample(), undefined), { changesAtBuild: 0, lastIndexBuildAt: null });
});

test('a reindex is planned at the threshold, not below it, and never twice', () => {
  const at = (changesTotal: number) =>
    planMaintenance(sample({ changesTotal }), { changesAtBuild: 200, lastIndexBuildAt: null }, new Set(), thresholds);
  assert.deepEqual(at(499), []);
  assert.deepEqual(
    at(500).map((j) => j.kind),
    ['reindex'],
  );
  assert.deepEqual(
    planMaintenance(sample(), { changesAtBuild: 0, lastIndexBuildAt: null }, new Set(['reindex']), thresholds),
    [],
  );
});

test('an ANALYZE is planned after bulk modifications', () => {
  const jobs = planMaintenance(
    sample({ changesTotal: 0, modifiedSinceAnalyze: 50 }),
    { changesAtBuild: 0, lastIndexBuildAt: null },
    new Set(),
    thresholds,
  );
  assert.deepEqual(
    jobs.map((j) => j.kind),
    ['analyze'],
  );
  assert.deepEqual(
    planMaintenance(
      sample({ changesTotal: 0, modifiedSinceAnalyze: 49 }),
      { changesAtBuild: 0, lastIndexBuildAt: null },
      new Set(),
      thresholds,
    ),
    [],
  );
});
