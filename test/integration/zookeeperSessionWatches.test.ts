import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../support/repoRoot.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// The `zookeeper` binding never frees a watcher callback (node-zk.cpp: WATCHER_CALLBACK_EPILOG
// has no delete) and the C client keeps every registration until it fires. A leader re-checks
// on every membership change and re-watches its own node, which never changes: without one
// native watch per path, each check would leave a registration behind for the life of the
// session. Measured in a child process with --expose-gc, so the figures are after a full GC.

let ensemble: ZooKeeperEnsemble;

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
}, 60_000);

afterAll(async () => {
  await ensemble?.close();
});

interface Measured {
  readonly heapGrowthKiB: number;
  readonly rssGrowthKiB: number;
  readonly watchedPaths: number;
  readonly fired: number;
}

const script = `
const [module, connect, path, mode] = process.argv.slice(1);
const { ZooKeeperSession } = await import(module);
const session = new ZooKeeperSession({ connectString: connect, sessionTimeoutMs: 20000 });
await new Promise((resolve) => session.once('connected', resolve));
await session.create(path, '', 'persistent');
let fired = 0;
const listener = () => fired++;
const check = () => mode === 'session'
  ? session.exists(path, listener)
  : new Promise((resolve) => session.native.aw_exists(path, () => fired++, () => resolve()));
const memory = () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage(); };
// Warm-up: RSS takes a one-time step of ~6 MB (allocator arenas) within the first ~15,000
// requests of a process, then stays flat; measured after it.
for (let i = 0; i < 15000; i++) await check();
const before = memory();
for (let i = 0; i < 10000; i++) await check();
const after = memory();
// The one watch is still there and fires once.
const changed = new Promise((resolve) => session.exists(path, resolve));
await session.delete(path);
await changed;
process.stdout.write(JSON.stringify({
  heapGrowthKiB: Math.round((after.heapUsed - before.heapUsed) / 1024),
  rssGrowthKiB: Math.round((after.rss - before.rss) / 1024),
  watchedPaths: session.watchedPaths,
  fired,
}));
session.close();
`;

async function measure(mode: 'session' | 'native', path: string): Promise<Measured> {
  const module = pathToFileURL(join(repoRoot, 'dist', 'zookeeper', 'session.js')).href;
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--input-type=module', '-e', script, module, ensemble.connectString, path, mode], {
    timeout: 120_000,
  });
  return JSON.parse(stdout) as Measured;
}

describe('ZooKeeperSession watches', () => {
  it('10,000 more re-checks of a watched node leave memory flat: one native watch per path, fired once', async () => {
    const session = await measure('session', '/zkleader-watch-session');
    expect(session.watchedPaths).toBe(0);
    expect(session.fired).toBe(1);
    expect(session.heapGrowthKiB).toBeLessThan(256);
    expect(session.rssGrowthKiB).toBeLessThan(4096);

    // The same 10,000 re-checks with a native watch each (what the election did before):
    // the measurement sees the growth it guards against.
    const native = await measure('native', '/zkleader-watch-native');
    expect(native.heapGrowthKiB).toBeGreaterThan(2048);
    expect(native.rssGrowthKiB).toBeGreaterThan(session.rssGrowthKiB + 4096);
  }, 180_000);
});
