/**
 * Schema validation of rendered manifests: Kubernetes kinds with the JSON schemas that
 * `kubernetes-models` generates from the Kubernetes OpenAPI spec, KEDA kinds with
 * `@kubernetes-models/keda` (generated from KEDA's CRDs), and Strimzi's KafkaConnector with a
 * schema written here from its CRD (nothing on npm ships it). A kind without a schema is an error.
 *
 * Like kubeconform without --strict, the generated schemas do not reject unknown fields;
 * strict.ts does that.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import type { K8sObject } from './manifests.ts';

type Validator = (obj: K8sObject) => void;

const model =
  (Model: new (data: never) => { validate(): void }): Validator =>
  (obj) =>
    new Model(obj as never).validate();

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const kafkaConnectorSchema = ajv.compile(
  JSON.parse(readFileSync(new URL('../schemas/strimzi-kafkaconnector-v1beta2.json', import.meta.url), 'utf8')),
);

const VALIDATORS: Record<string, Validator> = {
  'v1/Namespace': model(Namespace),
  'v1/ServiceAccount': model(ServiceAccount),
  'v1/ConfigMap': model(ConfigMap),
  'v1/Secret': model(Secret),
  'v1/Service': model(Service),
  'apps/v1/Deployment': model(Deployment),
  'batch/v1/Job': model(Job),
  'policy/v1/PodDisruptionBudget': model(PodDisruptionBudget),
  'rbac.authorization.k8s.io/v1/Role': model(Role),
  'rbac.authorization.k8s.io/v1/RoleBinding': model(RoleBinding),
  'keda.sh/v1alpha1/ScaledObject': model(ScaledObject),
  'kafka.strimzi.io/v1beta2/KafkaConnector': (obj) => {
    if (!kafkaConnectorSchema(obj)) throw new Error(ajv.errorsText(kafkaConnectorSchema.errors));
  },
};

/** Problems of each object, as `Kind/name: message`; empty when every object is valid. */
export function schemaProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const obj of objects) {
    const id = `${obj.kind}/${obj.metadata?.name}`;
    const validate = VALIDATORS[`${obj.apiVersion}/${obj.kind}`];
    if (!validate) {
      problems.push(`${id}: no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      validate(obj);
    } catch (error) {
      problems.push(`${id}: ${(error as Error).message}`);
    }
  }
  return problems;
}
