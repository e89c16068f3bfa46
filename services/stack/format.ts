/** Text output of `stack up|down|status`: one aligned line per component. Pure. */
import type { ComponentStatus } from './types.ts';

const NAME_WIDTH = 10;

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** `postgres  up  pid 1234  port 55432  (2.1s)` */
export function upLine(name: string, what: 'up' | 'already up', pid: number, port: number, elapsedMs?: number): string {
  const tail = elapsedMs === undefined ? '' : `  (${formatSeconds(elapsedMs)})`;
  return `${name.padEnd(NAME_WIDTH)}${what}  pid ${pid}  port ${port}${tail}`;
}

export function downLine(
  name: string,
  what: 'stopped' | 'killed' | 'not running',
  pid?: number,
  elapsedMs?: number,
): string {
  const pidPart = pid === undefined ? '' : `  pid ${pid}`;
  const tail = elapsedMs === undefined ? '' : `  (${formatSeconds(elapsedMs)})`;
  return `${name.padEnd(NAME_WIDTH)}${what}${pidPart}${tail}`;
}

/** One status line; postgres also shows pgvector and wal_level. */
export function statusLine(s: ComponentStatus): string {
  const parts = [
    s.name.padEnd(NAME_WIDTH) + s.state.padEnd(10),
    `version ${s.version}`,
    `port ${s.port}`,
    `pid ${s.pid ?? '-'}`,
  ];
  if (s.name === 'postgres') {
    parts.push(`pgvector ${String(s.details.pgvector ?? '-')}`, `wal_level ${String(s.details.walLevel ?? '-')}`);
  }
  parts.push(`log ${s.log}`);
  return parts.join('  ');
}
