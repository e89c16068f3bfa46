/**
 * Files that ship beside the code (schemas, migrations, connector template, stack assets) are
 * found from the package root, so the same code works from the TypeScript sources and from the
 * bundled CLI in dist/.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'vecsync') {
      return dir;
    }
    if (path.dirname(dir) === dir) throw new Error(`vecsync's package.json not found above ${from}`);
  }
}

/** The directory holding vecsync's package.json. */
export const PACKAGE_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

/** A path inside the package, e.g. `assetPath('schemas', 'document-chunks.avsc')`. */
export function assetPath(...segments: string[]): string {
  return path.join(PACKAGE_ROOT, ...segments);
}
