/**
 * Unknown fields, which the JSON schemas let through (like kubeconform without --strict): each
 * rendered object is type-checked as an object literal against the TypeScript interface that
 * kubernetes-models (and @kubernetes-models/keda) generate from the same OpenAPI spec and CRDs.
 * TypeScript's excess-property check then reports any field the API does not define, at any depth.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT, type K8sObject } from './manifests.ts';

const TYPES: Record<string, [string, string]> = {
  'v1/Namespace': ['kubernetes-models/v1', 'INamespace'],
  'v1/ServiceAccount': ['kubernetes-models/v1', 'IServiceAccount'],
  'v1/ConfigMap': ['kubernetes-models/v1', 'IConfigMap'],
  'v1/Secret': ['kubernetes-models/v1', 'ISecret'],
  'v1/Service': ['kubernetes-models/v1', 'IService'],
  'apps/v1/Deployment': ['kubernetes-models/apps/v1', 'IDeployment'],
  'batch/v1/Job': ['kubernetes-models/batch/v1', 'IJob'],
  'policy/v1/PodDisruptionBudget': ['kubernetes-models/policy/v1', 'IPodDisruptionBudget'],
  'rbac.authorization.k8s.io/v1/Role': ['kubernetes-models/rbac.authorization.k8s.io/v1', 'IRole'],
  'rbac.authorization.k8s.io/v1/RoleBinding': ['kubernetes-models/rbac.authorization.k8s.io/v1', 'IRoleBinding'],
  'keda.sh/v1alpha1/ScaledObject': ['@kubernetes-models/keda/keda.sh/v1alpha1', 'IScaledObject'],
};

/** `Kind/name: message` for every field the API does not define; kinds without a type are skipped. */
export function unknownFieldProblems(objects: K8sObject[]): string[] {
  const imports = new Map<string, Set<string>>();
  const lines: string[] = [];
  const ids: string[] = [];
  for (const obj of objects) {
    const t = TYPES[`${obj.apiVersion}/${obj.kind}`];
    if (!t) continue;
    imports.set(t[0], (imports.get(t[0]) ?? new Set()).add(t[1]));
    ids.push(`${obj.kind}/${obj.metadata.name}`);
    lines.push(`export const o${ids.length - 1}: ${t[1]} = ${JSON.stringify(obj)};`);
  }
  const header = [...imports].map(([m, names]) => `import type { ${[...names].join(', ')} } from '${m}';`);
  // Inside node_modules so that the packages resolve as they do for the tests.
  const dir = path.join(REPO_ROOT, 'node_modules', '.cache', 'vecsync-deploy-strict');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `manifests-${process.pid}-${Date.now()}.mts`);
  writeFileSync(file, [...header, ...lines].join('\n') + '\n');
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      skipLibCheck: true,
      types: [],
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      const id = ids[line - header.length] ?? '(imports)';
      return `${id}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    });
  } finally {
    rmSync(file, { force: true });
  }
}
