/** The code a benchmark measured, for its result file. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The commit, with `+dirty` for uncommitted changes; `override` where there is no git checkout. */
export async function codeVersion(override?: string): Promise<string> {
  if (override) return override;
  try {
    const git = (args: string[]) => promisify(execFile)('git', ['-C', REPO, ...args]).then((r) => r.stdout.trim());
    const [commit, status] = await Promise.all([
      git(['rev-parse', '--short', 'HEAD']),
      git(['status', '--porcelain', '--untracked-files=no']),
    ]);
    return status === '' ? commit : `${commit}+dirty`;
  } catch {
    return 'unknown';
  }
}
