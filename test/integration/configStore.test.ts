import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigConflictError, ConfigError, ConfigStore } from '../../zookeeper/configStore.js';
import { creatorAllAcl, digestId, type DigestCredential } from '../../zookeeper/credentials.js';
import { ensureTenant, lockRoot } from '../../zookeeper/tenants.js';
import type { ZooKeeperSession } from '../../zookeeper/session.js';
import { resultCode, SessionPool } from '../support/zookeeperSessions.js';
import { testAdminCredential, ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// The config store recipe (zookeeper/configStore.ts) against a real server: immutable
// versions, a pointer moved only by compare-and-set, rollback, pruning, size limits.

let ensemble: ZooKeeperEnsemble;
const pool = new SessionPool(() => ensemble.connectString);
const root = '/zkleader-config';

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
}, 60_000);

afterAll(async () => {
  pool.closeAll();
  await ensemble?.close();
});

async function store(): Promise<ConfigStore> {
  return new ConfigStore(await pool.open(), { root });
}

/** A session whose first call of `method` waits until released: interleavings made exact. */
function holdFirst(session: ZooKeeperSession, method: 'set' | 'delete'): { session: ZooKeeperSession; reached: Promise<void>; release: () => void } {
  let onReached!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((r) => (onReached = r));
  const released = new Promise<void>((r) => (release = r));
  let held = false;
  const proxy = new Proxy(session, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...a: unknown[]) => unknown;
      if (prop !== method) return fn.bind(target);
      return async (...args: unknown[]) => {
        if (!held) {
          held = true;
          onReached();
          await released;
        }
        return fn.apply(target, args);
      };
    },
  });
  return { session: proxy, reached, release };
}

async function thrown(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('the config store', () => {
  it('stores immutable versions 1, 2, 3 and moves the pointer; get, history and messages', async () => {
    const s = await store();
    expect(await s.set('shop', 'app', { 'db.url': 'postgres://a', mode: 'blue' }, 'first')).toBe(1);
    expect(await s.set('shop', 'app', { 'db.url': 'postgres://b', mode: 'green' }, 'second')).toBe(2);
    expect(await s.get('shop', 'app')).toMatchObject({ version: 2, keys: { 'db.url': 'postgres://b', mode: 'green' }, message: 'second' });
    expect((await s.get('shop', 'app', 1)).keys).toEqual({ 'db.url': 'postgres://a', mode: 'blue' });
    expect((await s.history('shop', 'app')).map((h) => [h.version, h.message, h.current])).toEqual([
      [1, 'first', false],
      [2, 'second', true],
    ]);
  });

  it('rolls back by storing the keys of the previous or a given version as a new one; keys already current write nothing; a version never made is refused by number', async () => {
    const s = await store();
    for (const mode of ['a', 'b', 'c']) await s.set('shop', 'rb', { mode });
    expect(await s.rollback('shop', 'rb', 'previous')).toEqual({ version: 4, changed: true, target: 2, from: 3 });
    expect(await s.get('shop', 'rb')).toMatchObject({ version: 4, keys: { mode: 'b' }, message: 'rollback to version 2', parent: 3 });
    // --previous again goes forth: the keys of 3.
    expect(await s.rollback('shop', 'rb', 'previous')).toEqual({ version: 5, changed: true, target: 3, from: 4 });
    expect((await s.get('shop', 'rb')).keys).toEqual({ mode: 'c' });
    expect(await s.rollback('shop', 'rb', 1, 'back to a')).toEqual({ version: 6, changed: true, target: 1, from: 5 });
    expect(await s.get('shop', 'rb')).toMatchObject({ keys: { mode: 'a' }, message: 'back to a' });
    // The keys of 1 are current (as 6), and 6 is current: nothing written either way.
    expect(await s.rollback('shop', 'rb', 1)).toEqual({ version: 6, changed: false, target: 1, from: 6 });
    expect(await s.rollback('shop', 'rb', 6)).toEqual({ version: 6, changed: false, target: 6, from: 6 });
    expect((await s.history('shop', 'rb')).map((h) => h.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await thrown(s.rollback('shop', 'rb', 9))).message).toBe('config shop/rb has no version 9 (never made, or pruned beyond --keep)');
    expect((await thrown(s.rollback('shop', 'missing', 1))).message).toBe('config shop/missing does not exist');
  });

  it('a prune racing two sets that have stored their versions spares both: the one whose compare-and-set wins stays readable', async () => {
    const admin = await store();
    for (let i = 1; i <= 5; i++) await admin.set('shop', 'race1', { i: String(i) });
    // Two writers read pointer {5}, store 6 and 7, and wait just before their compare-and-set.
    const w1 = holdFirst(await pool.open(), 'set');
    const w2 = holdFirst(await pool.open(), 'set');
    const r1 = new ConfigStore(w1.session, { root }).set('shop', 'race1', { i: 'writer-1' });
    await w1.reached;
    const r2 = new ConfigStore(w2.session, { root }).set('shop', 'race1', { i: 'writer-2' });
    await w2.reached;
    // A third process's `--keep 1` prune runs now: 6 and 7 are newer than the current 5.
    expect(await admin.prune('shop', 'race1', 1)).toEqual([1, 2, 3]);
    w1.release();
    expect(await r1).toBe(6);
    w2.release();
    expect(await thrown(r2)).toBeInstanceOf(ConfigConflictError);
    expect(await admin.get('shop', 'race1')).toMatchObject({ version: 6, keys: { i: 'writer-1' } });
  });

  it('a prune racing a rollback never leaves the pointer naming a deleted version: the rollback copies the keys it read', async () => {
    const admin = await store();
    for (let i = 1; i <= 5; i++) await admin.set('shop', 'race2', { i: String(i) });
    // rollback --to 2 has read version 2 and waits before its compare-and-set.
    const rb = holdFirst(await pool.open(), 'set');
    const rolled = new ConfigStore(rb.session, { root }).rollback('shop', 'race2', 2);
    await rb.reached;
    // A `--keep 2` prune deletes 2 meanwhile (the pointer it read: {5, previous 4}).
    expect(await admin.prune('shop', 'race2', 2)).toEqual([1, 2, 3]);
    rb.release();
    expect(await rolled).toEqual({ version: 6, changed: true, target: 2, from: 5 });
    expect(await admin.get('shop', 'race2')).toMatchObject({ version: 6, keys: { i: '2' } });
  });

  it('eight writers setting and pruning (--keep 1) at once: the current version is always readable, and no acknowledged set is lost', async () => {
    const writers = await Promise.all(Array.from({ length: 8 }, async () => store()));
    const reader = await store();
    await reader.set('shop', 'race3', { start: 'x' });
    const acked: number[] = [];
    const unreadable: string[] = [];
    await Promise.all(
      writers.map(async (s, i) => {
        for (let round = 0; round < 15; round++) {
          try {
            acked.push(await s.set('shop', 'race3', { w: String(i), r: String(round) }));
          } catch (err) {
            if (!(err instanceof ConfigConflictError)) throw err;
          }
          await s.prune('shop', 'race3', 1);
          await reader.get('shop', 'race3').catch((err: Error) => unreadable.push(err.message));
        }
      }),
    );
    expect(unreadable).toEqual([]);
    expect(acked.length).toBeGreaterThan(0);
    // Each acknowledged version was current when acknowledged, and the next accepted set names it
    // as its parent (pruning deletes versions, never their successors' record of them).
    const s = await store();
    const history = await s.history('shop', 'race3');
    const current = (await s.pointer('shop', 'race3'))?.pointer.version;
    const parents = new Set(history.map((h) => h.parent));
    const versions = new Set(history.map((h) => h.version));
    const lost = acked.filter((v) => v !== current && !parents.has(v) && versions.has(v));
    expect(lost).toEqual([]);
  }, 120_000);

  it('concurrent setters: every set either became current through its own compare-and-set or failed loudly; none is lost silently', async () => {
    const stores = await Promise.all(Array.from({ length: 8 }, () => store()));
    const admin = await pool.open();
    await stores[0]?.set('shop', 'race', { round: 'start' });
    const before = (await admin.get(`${root}/shop/_config/race`))?.stat.version ?? -1;
    const results = await Promise.all(
      stores.flatMap((s, i) =>
        [0, 1, 2].map(async (round) => {
          try {
            return { ok: await s.set('shop', 'race', { writer: String(i), round: String(round) }) };
          } catch (err) {
            if (err instanceof ConfigConflictError) return { conflict: err.stored };
            throw err;
          }
        }),
      ),
    );
    const ok = results.flatMap((r) => ('ok' in r && r.ok !== undefined ? [r.ok] : []));
    const conflicts = results.flatMap((r) => ('conflict' in r && r.conflict !== undefined ? [r.conflict] : []));
    expect(ok.length + conflicts.length).toBe(24);
    expect(ok.length).toBeGreaterThan(0);
    // Each success moved the pointer exactly once, from the state it read: the pointer's
    // data version grew by exactly the number of successes.
    const after = (await admin.get(`${root}/shop/_config/race`))?.stat.version ?? -1;
    expect(after - before).toBe(ok.length);
    // Every version a writer stored is in the history, conflicting ones too.
    const history = (await stores[0]?.history('shop', 'race'))?.map((h) => h.version) ?? [];
    for (const v of [...ok, ...conflicts]) expect(history).toContain(v);
    // The current version is one that reported success.
    const current = (await stores[0]?.get('shop', 'race'))?.version as number;
    expect(ok).toContain(current);
    // No lost update: the successes form one chain, each written on top of the one before
    // (its parent). A set that overwrote a version it never saw would fork the chain.
    const parents = new Map<number, number>();
    for (const h of (await stores[0]?.history('shop', 'race')) ?? []) if (ok.includes(h.version)) parents.set(h.version, h.parent);
    const chain: number[] = [];
    for (let v: number | undefined = current; v !== undefined && ok.includes(v); v = parents.get(v)) chain.push(v);
    const ascending = (values: readonly number[]) => [...values].sort((a: number, b: number) => a - b);
    expect(ascending(chain)).toEqual(ascending(ok));
  });

  it('refuses an oversized version with its size, before writing anything; bad names and keys name the rule', async () => {
    const s = new ConfigStore(await pool.open(), { root, maxVersionBytes: 1000 });
    const err = await thrown(s.set('shop', 'big', { blob: 'x'.repeat(2000) }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/^config shop\/big: the version is 20\d\d bytes, over the 1000 bytes the ZooKeeper ensemble accepts \(jute.maxbuffer\)/);
    const admin = await pool.open();
    expect(await admin.exists(`${root}/shop/_config/big`)).toBeNull();
    expect((await thrown(s.set('shop', 'Bad_Name', { a: 'b' }))).message).toContain('must be a ConfigMap name');
    expect((await thrown(s.set('shop', 'ok', { 'a/b': 'c' }))).message).toContain('config key "a/b" must be letters, digits');
    expect((await thrown(s.set('shop', 'ok', {}))).message).toBe('config shop/ok: a version needs at least one key');
  });

  it('the default limit is what a real ensemble accepts: just under it is stored, just over is refused by us, not by ZooKeeper', async () => {
    const s = await store();
    const overhead = JSON.stringify({ keys: { blob: '' }, message: '', createdAt: new Date().toISOString(), parent: Number.MAX_SAFE_INTEGER }).length;
    expect(await s.set('shop', 'limit', { blob: 'x'.repeat(1024 * 1024 - 4096 - overhead) })).toBeGreaterThan(0);
    expect((await thrown(s.set('shop', 'limit', { blob: 'x'.repeat(1024 * 1024) }))).message).toContain('over the 1044480 bytes');
  }, 30_000);

  it('prunes beyond --keep, never the current version, the previous one, nor any newer than the current; a pointer naming a version deleted by hand says so', async () => {
    const s = await store();
    for (let i = 1; i <= 6; i++) await s.set('shop', 'prune', { i: String(i) });
    // A pointer moved back by hand (as older releases rolled back) to 2, previous 6.
    const admin = await pool.open();
    const pointer = `${root}/shop/_config/prune`;
    await admin.set(pointer, JSON.stringify({ version: 2, previous: 6, updatedAt: null }));
    // Newest 2 kept (6, 5); 2 is current and 6 its previous; 3, 4, 5 are newer than the current: only 1 goes.
    expect(await s.prune('shop', 'prune', 2)).toEqual([1]);
    expect((await s.history('shop', 'prune')).map((h) => h.version)).toEqual([2, 3, 4, 5, 6]);
    await admin.set(pointer, JSON.stringify({ version: 6, previous: 5, updatedAt: null }));
    expect(await s.prune('shop', 'prune', 2)).toEqual([2, 3, 4]);
    expect((await s.history('shop', 'prune')).map((h) => h.version)).toEqual([5, 6]);
    await admin.delete(`${pointer}/v-0000000005`);
    expect((await thrown(s.get('shop', 'prune'))).message).toBe('config shop/prune points to version 6, which does not exist (pruned or deleted by hand); roll back to a version in its history');
    expect(await s.rollback('shop', 'prune', 5)).toEqual({ version: 7, changed: true, target: 5, from: 6 });
    expect((await s.get('shop', 'prune')).keys).toEqual({ i: '5' });
  });

  it('refuses a version written by hand whose key is no ConfigMap key (never a file name like ../x), or that has no key', async () => {
    const s = await store();
    await s.set('shop', 'hand', { k: 'v' });
    const admin = await pool.open();
    await admin.create(`${root}/shop/_config/hand/v-`, JSON.stringify({ keys: { '../../etc/x': 'evil' } }), 'persistent-sequential');
    await admin.create(`${root}/shop/_config/hand/v-`, JSON.stringify({ keys: {} }), 'persistent-sequential');
    expect((await thrown(s.get('shop', 'hand', 2))).message).toBe(`config version ${root}/shop/_config/hand/v-0000000001 has the key "../../etc/x", which is no ConfigMap key: refused`);
    expect((await thrown(s.get('shop', 'hand', 3))).message).toBe(`config version ${root}/shop/_config/hand/v-0000000002 is not a {"keys": {...}} document with at least one key`);
    expect((await thrown(s.rollback('shop', 'hand', 2))).message).toContain('which is no ConfigMap key: refused');
  });

  it("a tenant's config: created with the tenant's ACL, and nobody else can set, roll back or read it", async () => {
    const alpha: DigestCredential = { user: 'zkleader-alpha', password: 'alpha-password' };
    const admin = await pool.open(testAdminCredential);
    await lockRoot(admin, `${root}-t`);
    await ensureTenant(admin, `${root}-t`, 'alpha', [digestId(alpha)]);
    const member = new ConfigStore(await pool.open(alpha), { root: `${root}-t`, acl: creatorAllAcl });
    expect(await member.set('alpha', 'app', { k: 'v' })).toBe(1);
    expect((await admin.getAcl(`${root}-t/alpha/_config/app/v-0000000000`))?.acl).toEqual([{ perms: 31, scheme: 'digest', id: digestId(alpha) }]);
    const outsider = new ConfigStore(await pool.open(), { root: `${root}-t` });
    for (const attempt of [outsider.set('alpha', 'app', { k: 'evil' }), outsider.rollback('alpha', 'app', 1), outsider.get('alpha', 'app')]) {
      expect(await resultCode(attempt)).toBe('NOAUTH');
    }
    expect((await member.get('alpha', 'app')).keys).toEqual({ k: 'v' });
  });
});
