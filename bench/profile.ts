/**
 * `node --import tsx bench/profile.ts <file.cpuprofile>...`: where a service's CPU went, from the
 * V8 profiles a benchmark wrote (BENCH_CPU_PROF_DIR). Self time is summed per function and per
 * package (node_modules/<name>, node: internals, vecsync's own files), largest first.
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The package a script URL belongs to: `kafkajs`, `onnxruntime-node`, `vecsync: services/…`, `node:internal`. */
export function packageOf(url: string): string {
  if (!url) return '(native / GC / idle)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node: internals';
  const own = /\/(services|dist|bench|bin)\/(.*)$/.exec(url);
  if (own) return `vecsync: ${own[1]}/${own[2]!.split('/').slice(0, 2).join('/')}`;
  return url;
}

export function summarise(profile: CpuProfile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const functions = new Map<string, number>();
  const packages = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const name = frame.functionName || '(anonymous)';
    const fn =
      name === '(idle)' || name === '(program)' || name === '(garbage collector)'
        ? name
        : `${name} ${packageOf(frame.url)}:${frame.lineNumber + 1}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
    const pkg = ['(idle)', '(program)', '(garbage collector)'].includes(name) ? name : packageOf(frame.url);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => ({ name: k, ms: us / 1000, share: us / total }));
  return { totalMs: total / 1000, packages: top(packages, 15), functions: top(functions, 25) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const file of process.argv.slice(2)) {
    const s = summarise(JSON.parse(await readFile(file, 'utf8')) as CpuProfile);
    process.stdout.write(`\n${file}: ${(s.totalMs / 1000).toFixed(1)} s sampled\n  by package (self time):\n`);
    for (const p of s.packages)
      process.stdout.write(
        `    ${(p.share * 100).toFixed(1).padStart(5)} %  ${p.ms.toFixed(0).padStart(7)} ms  ${p.name}\n`,
      );
    process.stdout.write('  by function (self time):\n');
    for (const f of s.functions)
      process.stdout.write(
        `    ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.ms.toFixed(0).padStart(7)} ms  ${f.name}\n`,
      );
  }
}
