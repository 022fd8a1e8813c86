import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { creatorAllAcl, digestAcl, digestId, formatCredential, tenantUser, type DigestCredential } from '../../zookeeper/credentials.js';
import { ensureTenant, lockRoot } from '../../zookeeper/tenants.js';
import { useSidecarFixture } from '../support/sidecarFixture.js';
import { waitForAgreement, type SidecarProcess } from '../support/sidecarProcess.js';
import { testAdminCredential } from '../support/zookeeperEnsemble.js';
import { resultCode, SessionPool } from '../support/zookeeperSessions.js';

// Elections of a tenant (DESIGN.md "Tenancy"): real sidecar processes with --credential-file
// against a real server that knows the tenant's ACL; what every member published is recorded
// and checked over the whole history.

const fixture = useSidecarFixture(1);
const pool = new SessionPool(() => fixture.ensemble().connectString);
const open = (credential?: DigestCredential) => pool.open(credential);
let dir: string;

const alpha: DigestCredential = { user: tenantUser('alpha'), password: 'alpha-secret-password' };
const beta: DigestCredential = { user: tenantUser('beta'), password: 'beta-secret-password' };

function credentialFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

async function metric(sidecar: SidecarProcess, name: string): Promise<string[]> {
  return (await sidecar.http('/metrics')).body.split('\n').filter((line) => line.startsWith(name));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zkleader-tenancy-'));
  const admin = await open(testAdminCredential);
  await lockRoot(admin, '/zkleader');
  await ensureTenant(admin, '/zkleader', 'alpha', [digestId(alpha)]);
  await ensureTenant(admin, '/zkleader', 'beta', [digestId(beta)]);
}, 60_000);

afterAll(() => {
  pool.closeAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('an election of a tenant', () => {
  it('creates every node with the tenant ACL; outsiders can neither read, join, delete nor rewrite it', async () => {
    const file = credentialFile('alpha-1', `${formatCredential(alpha)}\n`);
    const group = await fixture.startSidecars('orders', 2, '4s', { namespace: 'alpha', extraArgs: ['--credential-file', file] });
    const { leader } = await waitForAgreement(group, 20_000);
    const admin = await open(testAdminCredential);
    const path = '/zkleader/alpha/orders';
    const nodes = await admin.getChildren(path);
    expect(nodes).toHaveLength(2);
    for (const node of [path, ...nodes.map((n) => `${path}/${n}`)]) {
      expect([node, (await admin.getAcl(node))?.acl]).toEqual([node, [{ perms: 31, scheme: 'digest', id: digestId(alpha) }]]);
    }
    const leaderNode = nodes.sort((a, b) => a.slice(-10).localeCompare(b.slice(-10)))[0] as string;
    for (const outsider of [await open(), await open(beta)]) {
      expect({
        join: await resultCode(outsider.create(`${path}/fake-n_`, JSON.stringify({ pod: 'attacker' }), 'ephemeral-sequential')),
        list: await resultCode(outsider.getChildren(path)),
        rewrite: await resultCode(outsider.set(`${path}/${leaderNode}`, JSON.stringify({ pod: 'attacker' }))),
        remove: await resultCode(outsider.delete(`${path}/${leaderNode}`)),
      }).toEqual({ join: 'NOAUTH', list: 'NOAUTH', rewrite: 'NOAUTH', remove: 'NOAUTH' });
    }
    // Nothing changed: the same leader, both members, no tampering seen.
    expect((await waitForAgreement(group, 5000)).leader.podName).toBe(leader.podName);
    expect(await admin.getChildren(path)).toHaveLength(2);
  }, 60_000);

  it('the superuser rewrites the leader node: no member ever follows it, one new leader, never two', async () => {
    const file = credentialFile('alpha-2', formatCredential(alpha));
    const group = await fixture.startSidecars('payments', 3, '4s', { namespace: 'alpha', extraArgs: ['--credential-file', file] });
    const recording = await fixture.recordHistory(group);
    const before = await waitForAgreement(group, 20_000);
    const admin = await open(testAdminCredential);
    const path = '/zkleader/alpha/payments';
    const [leaderNode] = (await admin.getChildren(path)).sort((a, b) => a.slice(-10).localeCompare(b.slice(-10)));
    await admin.set(`${path}/${leaderNode}`, JSON.stringify({ pod: 'attacker', ip: '10.6.6.6', uid: 'evil', namespace: 'alpha', startedAt: new Date().toISOString() }));

    const after = await until(
      'a new leader agreed on by all three',
      async () => {
        const agreed = await waitForAgreement(group, 500).catch(() => undefined);
        return agreed && agreed.epoch !== before.epoch ? agreed : undefined;
      },
      20_000,
    );
    expect(after.leader.podName).not.toBe(before.leader.podName);
    const history = await recording.expectSafe();
    // Nobody ever published the attacker's pod as the leader, or as a member.
    const named = history.files.flatMap((o) => (o.doc ? [o.doc.leader?.pod, ...o.doc.members.map((m) => m.pod)] : []));
    expect(named.length).toBeGreaterThan(0);
    expect(named).not.toContain('attacker');
    // The tampered node is gone (its owner deleted it) and the old leader joined again with a fresh one.
    const nodes = await admin.getChildren(path);
    expect(nodes).not.toContain(leaderNode);
    expect(nodes).toHaveLength(3);
    // The owner always sees its own node changed (it deletes it); a follower sees it only if
    // its read comes before that delete, so only the owner's count is certain.
    expect(await metric(before.leader, 'zkleader_candidate_tampered_total{own="true"}')).toEqual(['zkleader_candidate_tampered_total{own="true"} 1']);
  }, 60_000);

  it('a wrong credential: /readyz says why, retries back off, and the right password in the file is taken up by the live session', async () => {
    const file = credentialFile('alpha-3', `${alpha.user}:not-the-password`);
    const [member] = (await fixture.startSidecars('reports', 1, '4s', { namespace: 'alpha', extraArgs: ['--credential-file', file] })) as [SidecarProcess];
    const denied = await until('a NOAUTH on /readyz', async () => {
      const r = await member.http('/readyz');
      return r.body.includes('NOAUTH') ? r : undefined;
    }, 15_000);
    expect(denied.status).toBe(503);
    expect(denied.body).toContain(`to ${alpha.user} (NOAUTH): the password is wrong or was retired`);
    // Retries grow: 1 s, 2 s, 4 s … (the log says when the next one comes).
    const delays = await until('three retries', async () => {
      const found = [...member.logs.matchAll(/"retryInMs":(\d+)/g)].map((m) => Number(m[1]));
      return found.length >= 3 ? found.slice(0, 3) : undefined;
    }, 20_000);
    expect(delays).toEqual([1000, 2000, 4000]);
    // One Event-worthy denial, however many retries.
    expect(await metric(member, 'zkleader_zookeeper_access_denied_total')).toEqual(['zkleader_zookeeper_access_denied_total 1']);

    writeFileSync(file, formatCredential(alpha));
    await member.waitFor((doc) => doc.isLeader, 20_000, 'leadership once the right credential is in the file');
    expect(member.logs).toContain('the credential file changed; adding the new credential to the ZooKeeper session');
    expect((await member.http('/readyz')).status).toBe(200);
    expect(member.logs).not.toContain('not-the-password');
    expect(member.alive).toBe(true);
  }, 60_000);

  it('a credential file not there yet (no tenant Secret): /readyz names it, no session is opened, and the member joins once it appears', async () => {
    const file = join(dir, 'alpha-later');
    const [member] = (await fixture.startSidecars('audits', 1, '4s', { namespace: 'alpha', extraArgs: ['--credential-file', file] })) as [SidecarProcess];
    const missing = await until('the missing file on /readyz', async () => {
      const r = await member.http('/readyz');
      return r.body.includes('does not exist') ? r : undefined;
    }, 15_000);
    expect(missing.status).toBe(503);
    expect(missing.body).toContain(`cannot authenticate to ZooKeeper: credential file ${file} does not exist`);
    const admin = await open(testAdminCredential);
    expect(await admin.exists('/zkleader/alpha/audits')).toBeNull();
    writeFileSync(file, formatCredential(alpha));
    await member.waitFor((doc) => doc.isLeader, 40_000, 'leadership once the file is there');
    expect(member.alive).toBe(true);
  }, 60_000);

  it("a pod of namespace alpha with beta's credential cannot join alpha's election", async () => {
    const file = credentialFile('beta-1', formatCredential(beta));
    const [intruder] = (await fixture.startSidecars('orders-b', 1, '4s', { namespace: 'alpha', extraArgs: ['--credential-file', file] })) as [SidecarProcess];
    const denied = await until('the refusal on /readyz', async () => {
      const r = await intruder.http('/readyz');
      return r.body.includes('cannot authenticate') ? r : undefined;
    }, 15_000);
    // Refused before it connects: the file is not this namespace's identity.
    expect(denied.body).toContain(`is not the credential of namespace alpha (user ${alpha.user})`);
    expect(denied.body).not.toContain(beta.password);
    const admin = await open(testAdminCredential);
    expect(await admin.exists('/zkleader/alpha/orders-b')).toBeNull();
    expect(intruder.document()?.isLeader ?? false).toBe(false);
    expect(intruder.alive).toBe(true);
  }, 60_000);

  it('a credential holder forges a leader (a persistent node named to sort first): ignored, the real leader stays', async () => {
    const file = credentialFile('alpha-4', formatCredential(alpha));
    const group = await fixture.startSidecars('forged', 2, '4s', { namespace: 'alpha', extraArgs: ['--credential-file', file] });
    const recording = await fixture.recordHistory(group);
    const before = await waitForAgreement(group, 20_000);
    const holder = await open(alpha);
    await holder.create('/zkleader/alpha/forged/!-n_0000000000', JSON.stringify({ pod: 'forged-pod', ip: null, uid: null, namespace: 'alpha', startedAt: new Date().toISOString() }), 'persistent', creatorAllAcl);
    // A membership change makes every member check again (the heartbeat notices the new child).
    await until('both members counted the forged node', async () => {
      const counts = await Promise.all(group.map((m) => metric(m, 'zkleader_candidate_tampered_total{own="false"}')));
      return counts.every((c) => c[0]?.endsWith(' 1')) ? true : undefined;
    }, 15_000);
    const after = await waitForAgreement(group, 10_000);
    expect([after.leader.podName, after.epoch]).toEqual([before.leader.podName, before.epoch]);
    const history = await recording.expectSafe();
    expect(history.files.flatMap((o) => (o.doc ? [o.doc.leader?.pod, ...o.doc.members.map((m) => m.pod)] : []))).not.toContain('forged-pod');
  }, 60_000);

  it("a changed lowest node whose owner never removes it (a foreign session's): no leader while its lease may run, then a member deletes it", async () => {
    const file = credentialFile('alpha-5', formatCredential(alpha));
    const path = '/zkleader/alpha/squatted';
    // A session holding the tenant credential (not a sidecar) joins first and then changes its node.
    const squatter = await open(alpha);
    await squatter.ensurePath(path, creatorAllAcl);
    const node = await squatter.create(`${path}/${'0'.repeat(8)}-n_`, JSON.stringify({ pod: 'squatter', ip: null, uid: null, namespace: 'alpha', startedAt: new Date().toISOString() }), 'ephemeral-sequential', creatorAllAcl);
    const group = await fixture.startSidecars('squatted', 2, '4s', { namespace: 'alpha', extraArgs: ['--credential-file', file] });
    const recording = await fixture.recordHistory(group);
    for (const member of group) await member.waitFor((doc) => doc.leader?.pod === 'squatter', 20_000, 'following the first (squatting) candidate');
    const changedAt = Date.now();
    await squatter.set(node, JSON.stringify({ pod: 'squatter-rewritten' }));
    const blocked = await until('the blocked election on /readyz', async () => {
      const r = await (group[0] as SidecarProcess).http('/readyz');
      return r.body.includes('no member leads until it is gone') ? r : undefined;
    }, 10_000);
    expect(blocked.body).toContain(node.slice(node.lastIndexOf('/') + 1));
    const { leader } = await until('a leader after the changed node is deleted', async () => {
      const agreed = await waitForAgreement(group, 500).catch(() => undefined);
      return agreed?.leader ? agreed : undefined;
    }, 70_000);
    // Not before the longest session timeout a member may have (40 s): the owner's lease may run that long.
    expect(Date.now() - changedAt).toBeGreaterThanOrEqual(40_000);
    expect(group).toContain(leader);
    const admin = await open(testAdminCredential);
    expect(await admin.exists(node)).toBeNull();
    await recording.expectSafe();
  }, 120_000);

  it('a node whose ACL shuts the members out: a persistent one is no candidate (ignored), the real leader stays', async () => {
    const file = credentialFile('alpha-6', formatCredential(alpha));
    const group = await fixture.startSidecars('shut', 2, '4s', { namespace: 'alpha', extraArgs: ['--credential-file', file] });
    const before = await waitForAgreement(group, 20_000);
    const holder = await open(alpha);
    const nobody = digestAcl([digestId({ user: 'zkleader-nobody', password: 'unknown' })]);
    await holder.create('/zkleader/alpha/shut/x-n_0000000000', '{}', 'persistent', nobody);
    await until('both members counted it', async () => {
      const counts = await Promise.all(group.map((m) => metric(m, 'zkleader_candidate_tampered_total{own="false"}')));
      return counts.every((c) => c[0]?.endsWith(' 1')) ? true : undefined;
    }, 15_000);
    const after = await waitForAgreement(group, 10_000);
    expect([after.leader.podName, after.epoch]).toEqual([before.leader.podName, before.epoch]);
  }, 60_000);

  it('a member without a credential gets a clear NOAUTH naming the missing --credential-file', async () => {
    const [open_] = (await fixture.startSidecars('orders-open', 1, '4s', { namespace: 'alpha' })) as [SidecarProcess];
    const denied = await until('a NOAUTH on /readyz', async () => {
      const r = await open_.http('/readyz');
      return r.body.includes('NOAUTH') ? r : undefined;
    }, 15_000);
    expect(denied.body).toContain('namespace alpha is a tenant, and its members need its credential (--credential-file');
  }, 60_000);
});
