/**
 * A small reader of the Dockerfile and .dockerignore: stages, instructions, and which context
 * paths the build sends (Docker's rules: patterns are relative to the context root, `*` stays
 * within one path segment, `**` spans any, a matched directory excludes everything below it,
 * `!` re-includes, the last matching pattern wins).
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface Instruction {
  stage: number;
  op: string;
  args: string;
}

export function parseDockerfile(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const out: Instruction[] = [];
  let stage = -1;
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ stage, op, args: m[2]!.trim() });
  }
  return out;
}

function patternRegex(pattern: string): RegExp {
  let p = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  p = p.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  p = p
    .replace(/\*\*\//g, '<ANYDIRS>')
    .replace(/\*\*/g, '<ANY>')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  p = p.replace(/<ANYDIRS>/g, '(?:.*/)?').replace(/<ANY>/g, '.*');
  return new RegExp(`^${p}(?:/.*)?$`);
}

export function dockerignore(text: string): (relPath: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) =>
      l.startsWith('!') ? { include: true, re: patternRegex(l.slice(1)) } : { include: false, re: patternRegex(l) },
    );
  return (rel) => {
    let excluded = false;
    for (const r of rules) if (r.re.test(rel)) excluded = !r.include;
    return excluded;
  };
}

/** Copies the files a `COPY . .` would send from `root` to `target`. Returns how many. */
export function copyContext(root: string, target: string, excluded: (rel: string) => boolean): number {
  let n = 0;
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (excluded(r)) continue;
      const abs = path.join(root, r);
      if (statSync(abs).isDirectory()) walk(r);
      else {
        mkdirSync(path.dirname(path.join(target, r)), { recursive: true });
        cpSync(abs, path.join(target, r));
        n++;
      }
    }
  };
  walk('');
  return n;
}

export const read = (file: string): string => readFileSync(file, 'utf8');
