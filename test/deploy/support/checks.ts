/**
 * Consistency checks between the rendered manifests and the code: each returns a list of
 * problems (empty when consistent), so a test can also run it on a broken copy and see it fail.
 */
import { containersOf, type K8sObject } from './manifests.ts';

type Dict = Record<string, string>;
interface Container {
  name: string;
  args?: string[];
  env?: { name: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
}
interface Probe {
  httpGet?: { path?: string; port?: string | number };
}
interface Trigger {
  type: string;
  metadata: Record<string, string>;
}
interface ScaledObjectSpec {
  scaleTargetRef: { name: string };
  minReplicaCount?: number;
  maxReplicaCount?: number;
  triggers: Trigger[];
}

/** What a running service consumes, as observed on Kafka (group, topic, partitions). */
export interface Consumption {
  service: string;
  group: string;
  topic: string;
  partitions: number;
}

const spec = <T>(o: K8sObject): T => o.spec as T;
const data = (o: K8sObject | undefined): Dict =>
  o ? { ...((o.data as Dict) ?? {}), ...((o.stringData as Dict) ?? {}) } : {};

export function configMapAndSecret(objects: K8sObject[]): { configMap: Dict; secret: Dict } {
  return {
    configMap: data(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'vecsync-config')),
    secret: data(objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'vecsync-secrets')),
  };
}

/** The service a Deployment runs: `args: [run, <service>]`. */
export function serviceOf(deployment: K8sObject): string | undefined {
  const [main] = containersOf(deployment) as unknown as Container[];
  return main?.args?.[0] === 'run' ? main.args[1] : undefined;
}

/** Every variable the manifests name (ConfigMap and Secret keys, env, KEDA *FromEnv) is in the config schema. */
export function variableProblems(objects: K8sObject[], variables: Set<string>): string[] {
  const problems: string[] = [];
  const { configMap, secret } = configMapAndSecret(objects);
  if (Object.keys(configMap).length === 0) problems.push('no ConfigMap vecsync-config');
  if (Object.keys(secret).length === 0) problems.push('no Secret vecsync-secrets');
  for (const key of Object.keys(configMap))
    if (!variables.has(key)) problems.push(`ConfigMap key ${key} is not a config variable`);
  for (const key of Object.keys(secret))
    if (!variables.has(key)) problems.push(`Secret key ${key} is not a config variable`);
  for (const obj of objects) {
    for (const c of containersOf(obj) as unknown as Container[]) {
      for (const e of c.env ?? [])
        if (!variables.has(e.name))
          problems.push(`${obj.metadata.name}/${c.name}: env ${e.name} is not a config variable`);
      const refs = (c.envFrom ?? []).map((r) => r.configMapRef?.name ?? r.secretRef?.name);
      if (!refs.includes('vecsync-config') || !refs.includes('vecsync-secrets'))
        problems.push(`${obj.metadata.name}/${c.name}: envFrom must load vecsync-config and vecsync-secrets`);
    }
    if (obj.kind === 'ScaledObject') {
      for (const t of spec<ScaledObjectSpec>(obj).triggers) {
        for (const [k, v] of Object.entries(t.metadata)) {
          if (!k.endsWith('FromEnv')) continue;
          if (!variables.has(v)) problems.push(`${obj.metadata.name}: ${k}=${v} is not a config variable`);
          if (!(v in configMap) && !(v in secret))
            problems.push(`${obj.metadata.name}: ${k}=${v} is not set in the pods`);
        }
      }
    }
  }
  return problems;
}

/** Secrets and URLs that may carry passwords are in the Secret, never in the ConfigMap. */
export function secretPlacementProblems(objects: K8sObject[], secretVariables: readonly string[]): string[] {
  const { configMap, secret } = configMapAndSecret(objects);
  const mustBeSecret = [...secretVariables, 'VECSYNC_SOURCE_URL', 'VECSYNC_PGVECTOR_URL'];
  const problems: string[] = [];
  for (const name of mustBeSecret) {
    if (name in configMap) problems.push(`${name} is in the ConfigMap; it belongs in the Secret`);
    if (!(name in secret)) problems.push(`${name} is missing from the Secret`);
  }
  return problems;
}

/** One Deployment per service, run by `vecsync run <service>`, probed on the metrics port's /healthz. */
export function deploymentProblems(objects: K8sObject[], services: readonly string[]): string[] {
  const problems: string[] = [];
  const { configMap } = configMapAndSecret(objects);
  const metricsPort = Number(configMap.VECSYNC_METRICS_PORT);
  if (!Number.isInteger(metricsPort) || metricsPort <= 0) problems.push('ConfigMap sets no fixed VECSYNC_METRICS_PORT');
  if (['127.0.0.1', 'localhost', '::1', undefined].includes(configMap.VECSYNC_METRICS_HOST))
    problems.push('VECSYNC_METRICS_HOST must not be loopback in a pod (probes come from the kubelet)');
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  for (const service of services) {
    const ds = deployments.filter((d) => serviceOf(d) === service);
    if (ds.length !== 1) problems.push(`${ds.length} Deployments run ${service} (expected 1)`);
  }
  for (const d of deployments) {
    const service = serviceOf(d);
    if (!service || !services.includes(service)) problems.push(`${d.metadata.name}: args do not run a known service`);
    const [c] = containersOf(d) as unknown as Container[];
    const port = c?.ports?.find((p) => p.name === 'metrics');
    if (!port) problems.push(`${d.metadata.name}: no container port named metrics`);
    else if (port.containerPort !== metricsPort)
      problems.push(`${d.metadata.name}: metrics port ${port.containerPort} != VECSYNC_METRICS_PORT ${metricsPort}`);
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      const get = c?.[kind]?.httpGet;
      if (get?.path !== '/healthz' || (get.port !== 'metrics' && get.port !== metricsPort))
        problems.push(`${d.metadata.name}: ${kind} must GET /healthz on the metrics port`);
    }
  }
  const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
  for (const d of deployments) {
    const labels = (spec<{ template: { metadata: { labels: Dict } } }>(d).template.metadata.labels ?? {}) as Dict;
    const covered = pdbs.some((p) => {
      const sel = spec<{ selector: { matchLabels: Dict } }>(p).selector.matchLabels;
      return Object.entries(sel).every(([k, v]) => labels[k] === v);
    });
    if (!covered) problems.push(`${d.metadata.name}: no PodDisruptionBudget selects its pods`);
  }
  return problems;
}

/**
 * KEDA ScaledObjects: each scales a Deployment on exactly the (group, topic) pairs its service
 * consumes, never above the partition count of any of them, and the priority lane's never to zero.
 */
export function scalingProblems(objects: K8sObject[], consumed: Consumption[]): string[] {
  const problems: string[] = [];
  const deployments = new Map(objects.filter((o) => o.kind === 'Deployment').map((d) => [d.metadata.name, d]));
  const scaled = objects.filter((o) => o.kind === 'ScaledObject');
  const scaledServices = new Set<string>();
  for (const so of scaled) {
    const s = spec<ScaledObjectSpec>(so);
    const target = deployments.get(s.scaleTargetRef.name);
    const service = target && serviceOf(target);
    if (!service) {
      problems.push(`${so.metadata.name}: scaleTargetRef ${s.scaleTargetRef.name} is not a vecsync Deployment`);
      continue;
    }
    scaledServices.add(service);
    const wanted = consumed.filter((c) => c.service === service);
    const pair = (group: string, topic: string) => `${group} <- ${topic}`;
    const have = s.triggers.map((t) => {
      if (t.type !== 'kafka') problems.push(`${so.metadata.name}: trigger type ${t.type}, expected kafka`);
      return pair(t.metadata.consumerGroup ?? '', t.metadata.topic ?? '');
    });
    const want = wanted.map((c) => pair(c.group, c.topic));
    for (const p of have)
      if (!want.includes(p)) problems.push(`${so.metadata.name}: ${p} is not consumed by ${service}`);
    for (const p of want) if (!have.includes(p)) problems.push(`${so.metadata.name}: no trigger for ${p}`);
    const partitions = Math.min(...wanted.map((c) => c.partitions));
    if (s.maxReplicaCount === undefined || s.maxReplicaCount > partitions)
      problems.push(`${so.metadata.name}: maxReplicaCount ${s.maxReplicaCount} exceeds ${partitions} partitions`);
    const min = s.minReplicaCount ?? 0;
    if (wanted.some((c) => c.topic.endsWith('.outbox.priority')) && min < 1)
      problems.push(`${so.metadata.name}: the priority lane must keep minReplicaCount >= 1`);
  }
  for (const service of new Set(consumed.map((c) => c.service)))
    if (!scaledServices.has(service)) problems.push(`no ScaledObject for ${service}`);
  return problems;
}
