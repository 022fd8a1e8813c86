import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const sourceDirs = ['cli', 'src', 'sidecar', 'zookeeper', 'tenant', 'config', 'certs'];

function newestMtime(dir: string): number {
  let newest = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const path = join(dir, name);
    const st = statSync(path);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(path) : st.mtimeMs);
  }
  return newest;
}

/**
 * Tests that run zkleader as a child process run the built dist/. When a single test
 * file is run by hand after editing the sources, build first so it never tests
 * stale code (make test has already built, so this is then a no-op).
 */
export default function globalSetup(): void {
  const built = newestMtime(join(root, 'dist'));
  const sources = Math.max(...sourceDirs.map((d) => newestMtime(join(root, d))), statSync(join(root, 'package.json')).mtimeMs);
  if (built >= sources) return;
  process.stderr.write('\n[globalSetup] dist/ is older than the sources; running tsc -p tsconfig.build.json\n');
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], {
      stdio: 'inherit',
      cwd: root,
    });
  } catch {
    // tsc still emits what compiles; tests of the CLI then fail on their own, and
    // `make test` has already stopped at its build step.
    process.stderr.write('[globalSetup] tsc reported errors (above); tests run against what it emitted\n');
  }
}
