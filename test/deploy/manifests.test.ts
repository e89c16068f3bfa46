/**
 * The manifests under deploy/kubernetes, rendered like `kustomize build`, are valid against the
 * Kubernetes, KEDA and Strimzi schemas. Each check is also run on a broken copy, to show it fails.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clone, named, renderBase, renderStrimzi } from './support/manifests.ts';
import { schemaProblems } from './support/schemas.ts';
import { unknownFieldProblems } from './support/strict.ts';

// A copy to break on purpose; its shape is the manifest's, not a type of ours.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Broken = any;

describe('deploy/kubernetes against the schemas', () => {
  it('base renders every kind the issue asks for', () => {
    const kinds = new Set(renderBase().map((o) => o.kind));
    for (const kind of ['ConfigMap', 'Secret', 'Deployment', 'PodDisruptionBudget', 'Job', 'ScaledObject'])
      assert.ok(kinds.has(kind), `no ${kind}`);
  });

  it('base is valid against the Kubernetes and KEDA schemas', () => {
    assert.deepEqual(schemaProblems(renderBase()), []);
  });

  it('the Strimzi KafkaConnector is valid against its CRD schema', () => {
    assert.deepEqual(schemaProblems(renderStrimzi()), []);
  });

  it('a broken Deployment, ScaledObject, Job or KafkaConnector is reported', () => {
    const base = renderBase();
    const deployment = clone(named(base, 'Deployment', 'vecsync-writer')) as Broken;
    deployment.spec.template.spec.containers[0].ports[0].containerPort = 'metrics';
    const scaled = clone(named(base, 'ScaledObject', 'vecsync-propagator')) as Broken;
    scaled.spec.maxReplicaCount = '6';
    const job = clone(named(base, 'Job', 'vecsync-migrate')) as Broken;
    delete job.spec.template.spec.containers[0].name;
    const connector = clone(named(renderStrimzi(), 'KafkaConnector', 'vecsync-outbox')) as Broken;
    connector.spec.taskMax = 1;
    const unknown = { apiVersion: 'keda.sh/v1alpha2', kind: 'ScaledObject', metadata: { name: 'x' } };
    const problems = schemaProblems([deployment, scaled, job, connector, unknown]);
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.match(problems[0]!, /containerPort must be integer/);
    assert.match(problems[1]!, /maxReplicaCount must be integer/);
    assert.match(problems[2]!, /name/);
    assert.match(problems[3]!, /additional properties/);
    assert.match(problems[4]!, /no schema/);
  });

  it('no object has a field the Kubernetes or KEDA API does not define', () => {
    assert.deepEqual(unknownFieldProblems([...renderBase(), ...renderStrimzi()]), []);
    const broken = clone(named(renderBase(), 'Deployment', 'vecsync-propagator')) as Broken;
    const c = broken.spec.template.spec.containers[0];
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    const scaled = clone(named(renderBase(), 'ScaledObject', 'vecsync-writer')) as Broken;
    scaled.spec.maxReplicas = 6;
    const problems = unknownFieldProblems([broken, scaled]);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0]!, /Deployment\/vecsync-propagator: .*readinesProbe/);
    assert.match(problems[1]!, /ScaledObject\/vecsync-writer: .*maxReplicas/);
  });
});
