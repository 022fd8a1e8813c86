import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigConflictError, ConfigError, ConfigStore } from '../../zookeeper/configStore.js';
import { creatorAllAcl, digestId, type DigestCredential } from '../../zookeeper/credentials.js';
import { ensureTenant, lockRoot } from '../../zookeeper/tenants.js';
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

  it('rolls back to the previous version and to a given one; a version never made or pruned is refused by number', async () => {
    const s = await store();
    for (const mode of ['a', 'b', 'c']) await s.set('shop', 'rb', { mode });
    expect(await s.rollback('shop', 'rb', 'previous')).toBe(2);
    expect((await s.get('shop', 'rb')).keys).toEqual({ mode: 'b' });
    expect(await s.rollback('shop', 'rb', 'previous')).toBe(3);
    expect(await s.rollback('shop', 'rb', 1)).toBe(1);
    expect((await s.get('shop', 'rb')).keys).toEqual({ mode: 'a' });
    expect((await thrown(s.rollback('shop', 'rb', 9))).message).toBe('config shop/rb has no version 9 (never made, or pruned beyond --keep)');
    expect((await thrown(s.rollback('shop', 'missing', 1))).message).toBe('config shop/missing does not exist');
  });

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

  it('prunes beyond --keep, never the current version nor the previous one; a pointer naming a version deleted by hand says so', async () => {
    const s = await store();
    for (let i = 1; i <= 6; i++) await s.set('shop', 'prune', { i: String(i) });
    await s.rollback('shop', 'prune', 1);
    // Newest 2 kept (6, 5); 1 is current and 6 its previous: 2, 3, 4 go.
    expect(await s.prune('shop', 'prune', 2)).toEqual([2, 3, 4]);
    expect((await s.history('shop', 'prune')).map((h) => h.version)).toEqual([1, 5, 6]);
    expect((await s.get('shop', 'prune')).keys).toEqual({ i: '1' });
    const admin = await pool.open();
    await admin.delete(`${root}/shop/_config/prune/v-0000000000`);
    expect((await thrown(s.get('shop', 'prune'))).message).toBe('config shop/prune points to version 1, which does not exist (pruned or deleted by hand); roll back to a version in its history');
    expect(await s.rollback('shop', 'prune', 6)).toBe(6);
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
