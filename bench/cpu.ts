/**
 * Where the CPU goes during a benchmark phase, per stack component, read from /proc (Linux): the
 * coarse profile that says which process bounds a run on this 2-core machine: the Node services,
 * PostgreSQL (and which of its backends), Kafka or Connect. Node's own hot functions come from
 * running the bench under `node --cpu-prof`.
 */
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every Linux this runs on). */
const HZ = 100;

interface ProcSample {
  component: string;
  seconds: number;
}

export interface CpuSnapshot {
  at: number;
  procs: Map<number, ProcSample>;
  /** Busy and total ticks of the whole machine (/proc/stat), to tell what other work took. */
  busy: number;
  total: number;
}

/** The component a process belongs to, from its command line; undefined for what is not ours. */
export function componentOf(cmdline: string, benchPid: number, pid: number): string | undefined {
  if (pid === benchPid) return 'node (bench + in-process services)';
  const service = /vecsync\.mjs run (\w+)/.exec(cmdline);
  if (service) return `node: vecsync ${service[1]} processes`;
  const stack = /-Dvecsync\.stack\.component=(\S+)/.exec(cmdline);
  if (stack) return stack[1]!;
  // The machine's own PostgreSQL (`postgres: 15/main: …`) is not the stack's.
  if (cmdline.startsWith('postgres: ') && !/^postgres: \d+\/main:/.test(cmdline)) {
    if (cmdline.includes('walsender')) return 'postgres: walsender (Debezium decoding)';
    const backend = /^postgres: \S+ (\S+) /.exec(cmdline);
    if (backend) return `postgres: backends of db ${backend[1]}`;
    return 'postgres: background (wal writer, checkpointer, autovacuum)';
  }
  return undefined;
}

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat). */
export async function procCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command: utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / HZ;
}

/** The machine a result was measured on. */
export function machine(): { cpu: string | undefined; cores: number; node: string } {
  return { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version };
}

/** The 1, 5 and 15 minute load averages, for a result's conditions. */
export function loadAverage(separator = ' '): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(separator);
}

export async function cpuSnapshot(): Promise<CpuSnapshot> {
  const procs = new Map<number, ProcSample>();
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim();
      const component = componentOf(cmdline, process.pid, pid);
      if (!component) continue;
      procs.set(pid, { component, seconds: await procCpuSeconds(pid) });
    } catch {
      // The process ended between readdir and read.
    }
  }
  const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { at: performance.now(), procs, busy: total - idle, total };
}

export interface CpuUsage {
  seconds: number;
  /** Seconds of CPU per component, largest first; processes started during the phase count from zero. */
  components: { component: string; cpuSeconds: number; coresUsed: number }[];
  /** Every busy second on the machine, ours or not. */
  machineCpuSeconds: number;
  otherCpuSeconds: number;
  cores: number;
}

export function cpuUsage(before: CpuSnapshot, after: CpuSnapshot): CpuUsage {
  const seconds = (after.at - before.at) / 1000;
  const byComponent = new Map<string, number>();
  for (const [pid, sample] of after.procs) {
    const start = before.procs.get(pid)?.seconds ?? 0;
    byComponent.set(sample.component, (byComponent.get(sample.component) ?? 0) + sample.seconds - start);
  }
  const components = [...byComponent]
    .map(([component, cpuSeconds]) => ({ component, cpuSeconds, coresUsed: cpuSeconds / seconds }))
    .sort((a, b) => b.cpuSeconds - a.cpuSeconds);
  const machineCpuSeconds = (after.busy - before.busy) / HZ;
  const ours = components.reduce((a, c) => a + c.cpuSeconds, 0);
  return {
    seconds,
    components,
    machineCpuSeconds,
    otherCpuSeconds: Math.max(0, machineCpuSeconds - ours),
    cores: os.cpus().length,
  };
}

export function formatCpuUsage(usage: CpuUsage): string {
  const rows = usage.components
    .filter((c) => c.cpuSeconds >= 0.05)
    .map((c) => `    ${c.component}: ${c.cpuSeconds.toFixed(1)} s (${c.coresUsed.toFixed(2)} cores)`);
  return [
    `  CPU over ${usage.seconds.toFixed(1)} s on ${usage.cores} cores: machine busy ${usage.machineCpuSeconds.toFixed(1)} s (${(usage.machineCpuSeconds / usage.seconds).toFixed(2)} cores), not ours ${usage.otherCpuSeconds.toFixed(1)} s`,
    ...rows,
  ].join('\n');
}
