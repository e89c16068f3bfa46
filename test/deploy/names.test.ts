/**
 * Every topic, consumer group, port, command and variable that deploy/kubernetes names is the same
 * word the code uses. Groups, topics and partition counts are observed on Kafka while the real
 * services run (`vecsync run <service>` with the ConfigMap's settings), not restated here.
 * Each check also runs on a broken copy of the manifests, to show that it can fail.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { uniqueId } from '../support/ids.ts';
import { withAdmin } from '../support/kafka.ts';
import { ensureStack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import {
  configMapAndSecret,
  deploymentProblems,
  scalingProblems,
  secretPlacementProblems,
  serviceOf,
  variableProblems,
  type Consumption,
} from './support/checks.ts';
import { configVariableNames, startVecsync, vecsync, type Running } from './support/cli.ts';
import { DEFAULT_PARTITIONS, LANES, SECRET_VARIABLES, SERVICES, topicsFor } from './support/code.ts';
import { clone, containersOf, named, renderBase, renderStrimzi, type K8sObject } from './support/manifests.ts';

const { AssignerProtocol } = kafkajs;

// A copy to break on purpose; its shape is the manifest's, not a type of ours.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Broken = any;

const objects = renderBase();
const { configMap, secret } = configMapAndSecret(objects);

describe('deploy/kubernetes names what the code names', () => {
  const variables = configVariableNames();

  it('every ConfigMap key, Secret key, env name and KEDA *FromEnv is a config variable', () => {
    assert.deepEqual(variableProblems(objects, variables), []);
    const broken = clone(objects) as Broken[];
    broken.find((o) => o.kind === 'ConfigMap').data.VECSYNC_KAFKA_BROKER = 'x:1';
    broken.find(
      (o) => o.metadata.name === 'vecsync-writer' && o.kind === 'ScaledObject',
    ).spec.triggers[0].metadata.bootstrapServersFromEnv = 'KAFKA_BROKERS';
    const problems = variableProblems(broken, variables);
    assert.equal(problems.length, 3, problems.join('\n'));
  });

  it('passwords and API keys are in the Secret, not the ConfigMap', () => {
    assert.deepEqual(secretPlacementProblems(objects, SECRET_VARIABLES), []);
    assert.ok(SECRET_VARIABLES.includes('PINECONE_API_KEY'));
    const broken = clone(objects) as Broken[];
    const s = broken.find((o) => o.kind === 'Secret');
    broken.find((o) => o.kind === 'ConfigMap').data.VECSYNC_SOURCE_URL = s.stringData.VECSYNC_SOURCE_URL;
    delete s.stringData.PINECONE_API_KEY;
    assert.equal(secretPlacementProblems(broken, SECRET_VARIABLES).length, 2);
  });

  it('the ConfigMap and Secret together pass vecsync config validation', () => {
    const ok = vecsync(['config'], { ...configMap, ...secret });
    assert.equal(ok.code, 0, ok.stderr);
    const shown = JSON.parse(ok.stdout) as Record<string, unknown>;
    assert.equal(shown.VECSYNC_METRICS_PORT, Number(configMap.VECSYNC_METRICS_PORT));
    const bad = vecsync(['config'], { ...configMap, ...secret, VECSYNC_SINK: 'pgvektor' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /VECSYNC_SINK/);
  });

  it('one Deployment per service, run by `vecsync run <service>`, probed on /healthz of the metrics port', () => {
    assert.deepEqual(deploymentProblems(objects, SERVICES), []);
    const broken = clone(objects) as Broken[];
    const writer = broken.find((o) => o.kind === 'Deployment' && o.metadata.name === 'vecsync-writer');
    writer.spec.template.spec.containers[0].readinessProbe.httpGet.path = '/health';
    writer.spec.template.spec.containers[0].ports[0].containerPort = 9465;
    const withoutReconciler = broken.filter(
      (o) => !(o.kind === 'Deployment' && o.metadata.name === 'vecsync-reconciler'),
    );
    const problems = deploymentProblems(withoutReconciler, SERVICES);
    assert.equal(problems.length, 3, problems.join('\n'));
  });

  it('the reconciler is one replica and not autoscaled (it has no consumer group of its own)', () => {
    const reconciler = objects.find((o) => o.kind === 'Deployment' && serviceOf(o) === 'reconciler')!;
    assert.equal((reconciler.spec as { replicas: number }).replicas, 1);
    const targets = objects.filter((o) => o.kind === 'ScaledObject').map((o) => (o.spec as Broken).scaleTargetRef.name);
    assert.ok(!targets.includes(reconciler.metadata.name));
  });

  it('the Job runs `vecsync migrate`, then `vecsync connectors apply`, commands the CLI has', () => {
    const job = named(objects, 'Job', 'vecsync-migrate');
    const steps = containersOf(job).map((c) => c.args as string[]);
    assert.deepEqual(steps, [['migrate'], ['connectors', 'apply']]);
    // `--help` of a known command prints its own usage line; an unknown one prints the program's.
    const usage = (args: string[]) => vecsync([...args, '--help']).stdout.split('\n')[0];
    for (const args of steps) assert.match(usage(args)!, new RegExp(`^Usage: vecsync ${args.join(' ')} `));
    assert.doesNotMatch(usage(['migrat'])!, /^Usage: vecsync migrat /, 'an unknown command must not pass');
  });

  it('the Strimzi KafkaConnector is `vecsync connectors render` for the Secret source URL', () => {
    const env = {
      VECSYNC_SOURCE_URL: secret.VECSYNC_SOURCE_URL!,
      VECSYNC_TOPIC_PREFIX: configMap.VECSYNC_TOPIC_PREFIX!,
    };
    const r = vecsync(['connectors', 'render'], env);
    assert.equal(r.code, 0, r.stderr);
    const rendered = JSON.parse(r.stdout) as { name: string; config: Record<string, string> };
    const strimzi = renderStrimzi();
    const kc = named(strimzi, 'KafkaConnector', rendered.name) as Broken;
    const problems = connectorProblems(kc, rendered, strimzi);
    assert.deepEqual(problems, []);
    const broken = clone(kc);
    broken.spec.config['slot.name'] = 'vecsync_slot';
    broken.spec.config['database.password'] = 'CHANGE-ME';
    assert.equal(connectorProblems(broken, rendered, strimzi).length, 2);
  });
});

function connectorProblems(kc: Broken, rendered: { config: Record<string, string> }, strimzi: K8sObject[]): string[] {
  const problems: string[] = [];
  const { 'connector.class': cls, 'tasks.max': tasks, ...expected } = rendered.config;
  if (kc.spec.class !== cls) problems.push(`class ${kc.spec.class} != ${cls}`);
  if (String(kc.spec.tasksMax) !== tasks) problems.push(`tasksMax ${kc.spec.tasksMax} != ${tasks}`);
  const actual = kc.spec.config as Record<string, string>;
  for (const key of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
    if (key === 'database.password') continue;
    if (String(actual[key]) !== expected[key]) problems.push(`${key}: ${actual[key]} != ${expected[key]}`);
  }
  // The password comes from a Secret through Strimzi's config provider, never inline.
  const ref = /^\$\{secrets:([^/]+)\/([^:]+):([^}]+)\}$/.exec(String(actual['database.password']));
  if (!ref) problems.push('database.password is not a ${secrets:<namespace>/<secret>:<key>} reference');
  else {
    const s = strimzi.find((o) => o.kind === 'Secret' && o.metadata.name === ref[2]) as Broken;
    if (!s || s.metadata.namespace !== ref[1] || !(ref[3]! in (s.stringData ?? s.data ?? {})))
      problems.push(
        `database.password names ${ref[1]}/${ref[2]}:${ref[3]}, which the strimzi kustomization does not ship`,
      );
  }
  if (!kc.metadata.labels?.['strimzi.io/cluster']) problems.push('no strimzi.io/cluster label');
  return problems;
}

describe('KEDA scales on the groups and topics the running services consume', () => {
  const prefix = uniqueId('deploy');
  const running: Running[] = [];
  let brokers: string[] = [];
  const consumed: Consumption[] = [];

  before(async () => {
    // No stack is a failure here, not a skip.
    const stack = await ensureStack();
    brokers = stack.kafkaBrokers;
    // The lane topics as `vecsync connectors apply` creates them (DEFAULT_PARTITIONS each).
    const topics = topicsFor(prefix);
    await withAdmin(brokers, (admin) =>
      admin.createTopics({
        topics: LANES.map((l) => ({ topic: topics.lane(l), numPartitions: DEFAULT_PARTITIONS })),
        waitForLeaders: true,
      }),
    );
    // The manifests' settings, with the local stack's endpoints (their defaults) and a prefix of
    // this test's own for topics and groups.
    const env: Record<string, string> = { ...configMap };
    for (const k of [
      'VECSYNC_KAFKA_BROKERS',
      'VECSYNC_SCHEMA_REGISTRY_URL',
      'VECSYNC_CONNECT_URL',
      'VECSYNC_STACK_HOME',
    ])
      delete env[k];
    for (const [k, v] of Object.entries(process.env))
      if (/^VECSYNC_(PG|KAFKA|KAFKA_CONTROLLER|REGISTRY|CONNECT)_PORT$/.test(k) && v) env[k] = v;
    Object.assign(env, {
      VECSYNC_GROUP_PREFIX: prefix,
      VECSYNC_TOPIC_PREFIX: prefix,
      VECSYNC_METRICS_HOST: '127.0.0.1',
      VECSYNC_METRICS_PORT: '0',
    });
    // One service at a time, so each new group belongs to the service just started. The embedder
    // goes first: it creates the chunk topic the writer reads.
    const seen = new Set<string>();
    for (const service of ['embedder', 'writer', 'propagator']) {
      const proc = startVecsync(['run', service], env);
      running.push(proc);
      const groups = await waitFor(
        async () => {
          if (/"level":(50|60)/.test(proc.stderr()))
            throw new Error(`${service} failed: ${proc.stderr().slice(-2000)}`);
          const found = await stableGroups(brokers, prefix);
          const fresh = found.filter((g) => !seen.has(g.group));
          return fresh.length > 0 && /"msg":"running"/.test(proc.stderr()) ? fresh : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500, description: `${service} consumer groups` },
      );
      for (const g of groups) {
        seen.add(g.group);
        for (const topic of g.topics) {
          const partitions = await withAdmin(brokers, async (admin) => {
            const meta = await admin.fetchTopicMetadata({ topics: [topic] });
            return meta.topics[0]!.partitions.length;
          });
          // Back to the manifests' prefix: the words must match, the test's prefix aside.
          const unprefix = (s: string) => configMap.VECSYNC_TOPIC_PREFIX + s.slice(prefix.length);
          consumed.push({ service, group: unprefix(g.group), topic: unprefix(topic), partitions });
        }
      }
    }
  });

  after(async () => {
    await Promise.all(running.map((r) => r.stop()));
    if (brokers.length === 0) return;
    await withAdmin(brokers, async (admin) => {
      const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${prefix}.`));
      if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
      if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
    });
  });

  it('the services consume what the ScaledObjects name, and no more replicas than partitions', () => {
    // The observation itself: every consuming service and the lanes each reads.
    assert.deepEqual([...new Set(consumed.map((c) => c.service))].sort(), ['embedder', 'propagator', 'writer']);
    assert.ok(consumed.every((c) => c.group.startsWith(`${configMap.VECSYNC_GROUP_PREFIX}.`)));
    assert.deepEqual(scalingProblems(objects, consumed), []);
  });

  it('a ScaledObject naming another group, more replicas than partitions, or a priority lane at zero fails', () => {
    const broken = clone(objects) as Broken[];
    const so = (name: string) => broken.find((o) => o.kind === 'ScaledObject' && o.metadata.name === name);
    so('vecsync-writer').spec.triggers[0].metadata.consumerGroup = 'vecsync.writer';
    so('vecsync-propagator').spec.minReplicaCount = 0;
    so('vecsync-embedder').spec.maxReplicaCount = 12;
    const problems = scalingProblems(broken, consumed);
    // The writer's: a group it does not consume, and its real group without a trigger.
    assert.equal(problems.length, 4, problems.join('\n'));
  });
});

/** Groups of this prefix that are Stable with members, and the topics their members subscribe to. */
async function stableGroups(brokers: string[], prefix: string): Promise<{ group: string; topics: string[] }[]> {
  return withAdmin(brokers, async (admin) => {
    const ids = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(`${prefix}.`));
    if (ids.length === 0) return [];
    const { groups } = await admin.describeGroups(ids);
    return groups
      .filter((g) => g.state === 'Stable' && g.members.length > 0)
      .map((g) => ({
        group: g.groupId,
        topics: [
          ...new Set(g.members.flatMap((m) => AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.topics ?? [])),
        ].sort(),
      }));
  });
}
