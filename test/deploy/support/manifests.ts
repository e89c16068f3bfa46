/**
 * Renders deploy/kubernetes/<dir> the way `kustomize build` would for the subset of kustomize
 * this repository uses (resources, namespace, labels, images). Any other kustomization field is
 * an error, so a field added later cannot be silently ignored by these tests.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const KUBERNETES_DIR = path.join(REPO_ROOT, 'deploy', 'kubernetes');

/** A Kubernetes object as plain JSON. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'namespace', 'labels', 'images', 'resources']);
/** Kinds this repository ships that are not namespaced. */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']);

interface Kustomization {
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  resources?: string[];
}

export function readYamlDocuments(file: string): K8sObject[] {
  return YAML.parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as K8sObject;
  });
}

/** Containers and init containers of a workload (Deployment, Job) or a Pod template. */
export function containersOf(obj: K8sObject): Record<string, unknown>[] {
  const spec = (obj.spec ?? {}) as { template?: { spec?: Record<string, unknown> } };
  const pod = spec.template?.spec ?? {};
  return [...((pod.initContainers as []) ?? []), ...((pod.containers as []) ?? [])];
}

export function renderKustomization(dir: string): K8sObject[] {
  const file = path.join(dir, 'kustomization.yaml');
  const k = YAML.parse(readFileSync(file, 'utf8')) as Kustomization & Record<string, unknown>;
  const unsupported = Object.keys(k).filter((key) => !SUPPORTED.has(key));
  if (unsupported.length > 0) throw new Error(`${file}: kustomization fields not rendered by the test: ${unsupported}`);
  const objects: K8sObject[] = [];
  for (const resource of k.resources ?? []) {
    const target = path.join(dir, resource);
    objects.push(...(resource.endsWith('.yaml') ? readYamlDocuments(target) : renderKustomization(target)));
  }
  for (const obj of objects) {
    if (k.namespace && !CLUSTER_SCOPED.has(obj.kind)) obj.metadata.namespace = k.namespace;
    for (const set of k.labels ?? []) {
      if (set.includeSelectors) throw new Error(`${file}: labels.includeSelectors is not rendered by the test`);
      obj.metadata.labels = { ...obj.metadata.labels, ...set.pairs };
    }
    for (const container of containersOf(obj)) {
      for (const image of k.images ?? []) {
        const [name, tag] = String(container.image).split(':');
        if (name !== image.name) continue;
        container.image = `${image.newName ?? name}:${image.newTag ?? tag ?? 'latest'}`;
      }
    }
  }
  return objects;
}

export const renderBase = (): K8sObject[] => renderKustomization(path.join(KUBERNETES_DIR, 'base'));
export const renderStrimzi = (): K8sObject[] => renderKustomization(path.join(KUBERNETES_DIR, 'strimzi'));

export function byKind<T = K8sObject>(objects: K8sObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}

export function named(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the rendered manifests`);
  return found;
}

/** A deep copy to break in a negative test. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}
