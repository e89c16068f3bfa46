/** Port checks: is a loopback port free, and who holds it when it is not. */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { PortInUseError } from './errors.ts';

const execFileAsync = promisify(execFile);

/** A port the stack binds, and the component that binds it. */
export interface PortClaim {
  port: number;
  component: string;
}

/**
 * True when nothing listens on the port on loopback. Binding 127.0.0.1 also fails when another
 * process holds the port on 0.0.0.0, which is the conflict that matters.
 */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else reject(err);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Parses one `ss -ltnpH` line into the port and the holder (`name pid N`). Pure; the
 * process column is absent when ss lacks the rights to see it.
 */
export function parseSsListener(line: string): { port: number; holder: string | undefined } | undefined {
  const cols = line.trim().split(/\s+/);
  const local = cols[3];
  if (!local) return undefined;
  const portText = local.slice(local.lastIndexOf(':') + 1);
  const port = Number(portText);
  if (!Number.isInteger(port) || port <= 0) return undefined;
  const m = /users:\(\("([^"]+)",pid=(\d+)/.exec(line);
  return { port, holder: m ? `${m[1]} pid ${m[2]}` : undefined };
}

/** Best effort: names the process listening on a port, for the error message. */
export async function describePortHolder(port: number): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync('ss', ['-ltnpH', `sport = :${port}`], { timeout: 3000 });
    for (const line of stdout.split('\n')) {
      const parsed = parseSsListener(line);
      if (parsed?.port === port && parsed.holder) return parsed.holder;
    }
  } catch {
    // ss missing or not permitted: the error message just names the port.
  }
  return undefined;
}

/** Throws PortInUseError (one line, naming port and component) for the first taken port. */
export async function assertPortsFree(claims: readonly PortClaim[]): Promise<void> {
  for (const { port, component } of claims) {
    if (!(await isPortFree(port))) throw new PortInUseError(port, component, await describePortHolder(port));
  }
}

/** Ports claimed twice in one configuration (e.g. VECSYNC_KAFKA_PORT equal to VECSYNC_CONNECT_PORT). */
export function duplicatePorts(claims: readonly PortClaim[]): Array<{ port: number; components: string[] }> {
  const byPort = new Map<number, string[]>();
  for (const c of claims) byPort.set(c.port, [...(byPort.get(c.port) ?? []), c.component]);
  return [...byPort.entries()].filter(([, cs]) => cs.length > 1).map(([port, components]) => ({ port, components }));
}
