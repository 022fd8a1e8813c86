import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigStore } from '../../zookeeper/configStore.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { SidecarProcess } from '../support/sidecarProcess.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';
import { SessionPool } from '../support/zookeeperSessions.js';

// The sidecar's config output (DESIGN.md "Configuration in ZooKeeper"): real sidecar
// processes following configs in a real ZooKeeper, written as files with the kubelet's
// `..data` switch.

let ensemble: ZooKeeperEnsemble;
const pool = new SessionPool(() => ensemble.connectString);
const sidecars: SidecarProcess[] = [];

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
}, 60_000);

afterEach(async () => {
  await Promise.all(sidecars.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  pool.closeAll();
  await ensemble?.close();
});

async function startConfigOnly(pod: string, configs: string, election = ''): Promise<SidecarProcess> {
  const s = await SidecarProcess.start({ zookeeper: ensemble.connectString, election, podName: pod, namespace: 'shop', extraArgs: ['--configs', configs] });
  sidecars.push(s);
  return s;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Runs the built CLI; resolves with its exit code. */
function runCli(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(zkleaderBin, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

function configJson(s: SidecarProcess): Record<string, { version: number; keys: string[] }> | undefined {
  try {
    return JSON.parse(readFileSync(join(s.dir, 'config.json'), 'utf8')) as Record<string, { version: number; keys: string[] }>;
  } catch {
    return undefined;
  }
}

describe('a sidecar following configs', () => {
  it('config-only: not ready until the config exists (the reason on /readyz), then writes every key, config.json and GET /config, and follows updates and rollbacks', async () => {
    const store = new ConfigStore(await pool.open(), { root: '/zkleader' });
    const s = await startConfigOnly('cfg-0', 'app');
    const waiting = await until('the missing config on /readyz', async () => {
      const r = await s.http('/readyz');
      return r.body.includes('does not exist') ? r : undefined;
    });
    expect(waiting.status).toBe(503);
    expect(waiting.body).toContain('config shop/app does not exist');
    // No election at all: no leader files, no /leader document.
    expect((await s.http('/leader')).status).toBe(503);

    await store.set('shop', 'app', { 'db.url': 'postgres://a', mode: 'blue' });
    await until('version 1 on disk', () => (configJson(s)?.app?.version === 1 ? true : undefined));
    const dir = join(s.dir, 'config', 'app');
    expect(readFileSync(join(dir, 'db.url'), 'utf8')).toBe('postgres://a');
    expect(readFileSync(join(dir, 'mode'), 'utf8')).toBe('blue');
    expect(readlinkSync(join(dir, 'mode'))).toBe(join('..data', 'mode'));
    expect((await s.http('/readyz')).status).toBe(200);
    expect(JSON.parse((await s.http('/config')).body)).toMatchObject({ app: { version: 1, keys: ['db.url', 'mode'] } });

    // A new version drops a key and adds one: the visible names follow.
    await store.set('shop', 'app', { mode: 'green', extra: 'x' });
    await until('version 2 on disk', () => (configJson(s)?.app?.version === 2 ? true : undefined));
    expect(readdirSync(dir).filter((n) => !n.startsWith('..')).sort()).toEqual(['extra', 'mode']);
    expect(readFileSync(join(dir, 'mode'), 'utf8')).toBe('green');
    await store.rollback('shop', 'app', 'previous');
    await until('version 3 (the keys of 1) on disk', () => (configJson(s)?.app?.version === 3 ? true : undefined));
    expect(readFileSync(join(dir, 'mode'), 'utf8')).toBe('blue');
    expect(readdirSync(dir).filter((n) => !n.startsWith('..')).sort()).toEqual(['db.url', 'mode']);
    expect((await s.http('/metrics')).body).toContain('zkleader_config_version{config="app"} 3');
  }, 60_000);

  it('switches all keys at once: a reader resolving ..data never sees keys of two versions, over 40 updates', async () => {
    const store = new ConfigStore(await pool.open(), { root: '/zkleader' });
    await store.set('shop', 'atomic', { a: '0', b: '0', c: '0' });
    const s = await startConfigOnly('cfg-1', 'atomic');
    const dir = join(s.dir, 'config', 'atomic');
    await until('first version', () => (configJson(s)?.atomic ? true : undefined));
    let reads = 0;
    const mixed: string[] = [];
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        try {
          const data = realpathSync(join(dir, '..data'));
          const values = ['a', 'b', 'c'].map((k) => readFileSync(join(data, k), 'utf8'));
          if (new Set(values).size !== 1) mixed.push(values.join(','));
          reads++;
        } catch (err) {
          // The directory of a version two switches old may go while a slow reader is in it.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 1; i <= 40; i++) await store.set('shop', 'atomic', { a: String(i), b: String(i), c: String(i) });
    await until('the last version on disk', () => (configJson(s)?.atomic?.version === 41 ? true : undefined));
    stop = true;
    await reader;
    expect(mixed).toEqual([]);
    expect(reads).toBeGreaterThan(100);
  }, 60_000);

  it('keeps the last files while ZooKeeper does not answer (longer than the session timeout) and catches up when it is back', async () => {
    const store = new ConfigStore(await pool.open(), { root: '/zkleader' });
    await store.set('shop', 'outage', { k: 'before' });
    const s = await startConfigOnly('cfg-2', 'outage');
    await until('version 1', () => (configJson(s)?.outage?.version === 1 ? true : undefined));
    const server = ensemble.servers[0];
    if (!server) throw new Error('no server');
    // Unreachable for longer than the session timeout (4 s): the session is lost too.
    await server.pause();
    await sleep(6000);
    expect(readFileSync(join(s.dir, 'config', 'outage', 'k'), 'utf8')).toBe('before');
    expect(JSON.parse((await s.http('/config')).body)).toMatchObject({ outage: { version: 1 } });
    expect(s.alive).toBe(true);
    await server.resume();
    // The operator's `config set`, a process of its own (the test's sessions may have been
    // lost with the pause), tried again until the server answers.
    await until(
      'config set after the pause',
      async () => ((await runCli(['config', 'set', 'shop/outage', '--from-literal', 'k=after', '--zookeeper', ensemble.connectString, '--timeout', '5s'])) === 0 ? true : undefined),
      60_000,
    );
    await until('version 2 after the outage', () => (configJson(s)?.outage?.version === 2 ? true : undefined), 30_000);
    expect(readFileSync(join(s.dir, 'config', 'outage', 'k'), 'utf8')).toBe('after');
  }, 120_000);

  it('a config deleted and set again numbers from 1 anew: the sidecar writes the new version 1, and a problem cleared by going back to what is on disk leaves /readyz', async () => {
    const session = await pool.open();
    const store = new ConfigStore(session, { root: '/zkleader' });
    await store.set('shop', 'again', { k: 'old' });
    const s = await startConfigOnly('cfg-4', 'again');
    await until('the old version 1', () => (configJson(s)?.again?.version === 1 ? true : undefined));
    // Pointed by hand at a version that does not exist, then back to the one on disk.
    await session.set('/zkleader/shop/_config/again', JSON.stringify({ version: 9, previous: 1 }));
    await until('the problem on /readyz', async () => ((await s.http('/readyz')).body.includes('has no version 9') ? true : undefined));
    await session.set('/zkleader/shop/_config/again', JSON.stringify({ version: 1, previous: null }));
    await until('/readyz ready again', async () => ((await s.http('/readyz')).status === 200 ? true : undefined));
    // Deleted and made again: the same number, another pointer node.
    await store.delete('shop', 'again');
    expect(await store.set('shop', 'again', { k: 'new' })).toBe(1);
    await until('the new version 1 on disk', () => (readFileSync(join(s.dir, 'config', 'again', 'k'), 'utf8') === 'new' ? true : undefined));
    expect((await s.http('/readyz')).status).toBe(200);
  }, 60_000);

  it('a version written by hand with a key like ../x is refused: nothing is written outside its directory, /readyz says why, the last files stay', async () => {
    const session = await pool.open();
    const store = new ConfigStore(session, { root: '/zkleader' });
    await store.set('shop', 'escape', { k: 'one' });
    const s = await startConfigOnly('cfg-5', 'escape');
    await until('version 1', () => (configJson(s)?.escape?.version === 1 ? true : undefined));
    await session.create('/zkleader/shop/_config/escape/v-', JSON.stringify({ keys: { '../../leader.json': 'clobbered', k: 'two' } }), 'persistent-sequential');
    await session.set('/zkleader/shop/_config/escape', JSON.stringify({ version: 2, previous: 1 }));
    const r = await until('the refusal on /readyz', async () => {
      const res = await s.http('/readyz');
      return res.body.includes('no ConfigMap key') ? res : undefined;
    });
    expect(r.body).toContain('has the key "../../leader.json", which is no ConfigMap key: refused');
    expect(readFileSync(join(s.dir, 'config', 'escape', 'k'), 'utf8')).toBe('one');
    expect(readdirSync(s.dir)).not.toContain('leader.json');
    expect(readdirSync(join(s.dir, 'config'))).toEqual(['escape']);
  }, 60_000);

  it('a pointer naming a deleted version: /readyz says so and the last files stay', async () => {
    const session = await pool.open();
    const store = new ConfigStore(session, { root: '/zkleader' });
    await store.set('shop', 'broken', { k: 'one' });
    const s = await startConfigOnly('cfg-3', 'broken');
    await until('version 1', () => (configJson(s)?.broken?.version === 1 ? true : undefined));
    await store.set('shop', 'broken', { k: 'two' });
    await until('version 2', () => (configJson(s)?.broken?.version === 2 ? true : undefined));
    await session.delete('/zkleader/shop/_config/broken/v-0000000000');
    // Point at version 1 by hand (a rollback would refuse): the sidecar cannot read it.
    await session.set('/zkleader/shop/_config/broken', JSON.stringify({ version: 1, previous: 2 }));
    const r = await until('the problem on /readyz', async () => {
      const res = await s.http('/readyz');
      return res.body.includes('has no version 1') ? res : undefined;
    });
    expect(r.body).toContain('config shop/broken has no version 1 (never made, or pruned beyond --keep)');
    expect(readFileSync(join(s.dir, 'config', 'broken', 'k'), 'utf8')).toBe('two');
  }, 60_000);
});
