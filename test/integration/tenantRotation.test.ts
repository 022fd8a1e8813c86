import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { creatorAllAcl, digestId, formatCredential, parseCredential, Perms, readCredentialFile, type DigestCredential } from '../../zookeeper/credentials.js';
import { LeaderElection } from '../../zookeeper/election.js';
import type { ElectionSnapshot } from '../../zookeeper/electionSnapshot.js';
import type { ZooKeeperSession } from '../../zookeeper/session.js';
import { ApiEmulator } from '../support/apiEmulator/index.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { testAdminCredential, ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';
import { resultCode, SessionPool } from '../support/zookeeperSessions.js';

// Password rotation of a tenant while its election runs: `zkleader tenant add --rotate`, the
// members take up the new password on their live sessions (what the sidecar does when its
// credential file changes), then `--retire-old`. Every update every member published is
// recorded, and the claims are checked over the whole history: one leader with one epoch
// throughout, never `unknown`, nobody out of the election, no access denied.

const namespace = 'shop';
const electionPath = `/zkleader/${namespace}/orders`;
const sessionTimeoutMs = 6000;
const pods = ['orders-0', 'orders-1', 'orders-2'];

let ensemble: ZooKeeperEnsemble;
let emu: ApiEmulator;
let kubeconfig: string;
let admin: ZooKeeperSession;
const pool = new SessionPool(() => ensemble.connectString);
const open = (credential?: DigestCredential) => pool.open(credential);
const elections: LeaderElection[] = [];
const dir = mkdtempSync(join(tmpdir(), 'zkleader-tenant-rotation-'));
const adminFile = join(dir, 'admin');
/** The file each member reads its credential from (the mounted Secret of a pod). */
const credentialFile = join(dir, 'credential');

interface Recorded {
  readonly at: number;
  readonly member: string;
  readonly snapshot: ElectionSnapshot;
}

const history: Recorded[] = [];
const denied: { member: string; message: string }[] = [];
const problems: { at: number; member: string; problem: string }[] = [];

function tenantAdd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = ['tenant', 'add', namespace, ...args, '--zookeeper', ensemble.connectString, '--admin-credential-file', adminFile, '--kubeconfig', kubeconfig];
  return new Promise((resolve) => {
    execFile(zkleaderBin, argv, { env: { PATH: process.env.PATH } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function secretCredential(): DigestCredential {
  const data = emu.getSecret(namespace, 'zkleader-zookeeper')?.data?.credential ?? '';
  return parseCredential(Buffer.from(data, 'base64').toString('utf8'), 'the Secret');
}

/** The ACL of every node of the tenant, as `path → sorted ids` (all ALL, digest). */
async function tenantAcls(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const visit = async (path: string): Promise<void> => {
    const acl = await admin.getAcl(path);
    if (!acl) return;
    expect(acl.acl.every((e) => e.scheme === 'digest' && e.perms === Perms.ALL)).toBe(true);
    out[path] = acl.acl.map((e) => e.id).sort();
    for (const child of await admin.getChildren(path)) await visit(`${path}/${child}`);
  };
  await visit(`/zkleader/${namespace}`);
  return out;
}

function startMember(pod: string): LeaderElection {
  const election = new LeaderElection({
    connectString: ensemble.connectString,
    sessionTimeoutMs,
    electionPath,
    self: { pod, ip: null, uid: null, namespace, startedAt: new Date().toISOString() },
    logger: pino({ level: 'silent' }),
    credential: () => readCredentialFile(credentialFile),
  });
  election.on('update', (snapshot) => history.push({ at: Date.now(), member: pod, snapshot }));
  election.on('accessDenied', (message) => denied.push({ member: pod, message }));
  election.on('problem', (problem) => problem !== null && problems.push({ at: Date.now(), member: pod, problem }));
  elections.push(election);
  election.start();
  return election;
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

const latest = (pod: string) => history.filter((r) => r.member === pod).at(-1)?.snapshot;

beforeAll(async () => {
  writeFileSync(adminFile, formatCredential(testAdminCredential));
  [ensemble, emu] = await Promise.all([ZooKeeperEnsemble.start({ size: 1 }), ApiEmulator.start()]);
  kubeconfig = await emu.kubeconfigFile();
  await emu.kubeConfig().makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  admin = await open(testAdminCredential);
}, 60_000);

afterAll(async () => {
  await Promise.all(elections.map((e) => e.close()));
  pool.closeAll();
  await emu?.close();
  await ensemble?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('tenant password rotation with a running election', () => {
  it('keeps the leader, its epoch and every member through --rotate, the members taking up the new password, and --retire-old', async () => {
    expect((await tenantAdd()).code).toBe(0);
    const oldCredential = secretCredential();
    writeFileSync(credentialFile, formatCredential(oldCredential));

    const members = pods.map((pod) => startMember(pod));
    await until('one leader, seen by all with every member', () =>
      pods.every((pod) => {
        const s = latest(pod);
        return s !== undefined && s.state !== 'unknown' && s.leader?.pod === latest(pods[0] as string)?.leader?.pod && s.members.length === pods.length;
      }),
    );
    const start = Date.now();
    const leader = latest(pods[0] as string)?.leader?.pod;
    const epoch = latest(pods[0] as string)?.epoch;
    const order = latest(pods[0] as string)?.members.map((m) => m.pod).join(',');
    expect(leader).toBeDefined();
    const nodesBefore = Object.keys(await tenantAcls()).sort();
    expect(nodesBefore).toHaveLength(2 + pods.length);

    // 1. --rotate: every node accepts the old and the new password; the Secret holds the new one.
    const rotated = await tenantAdd('--rotate');
    expect([rotated.code, rotated.stderr]).toEqual([0, '']);
    const newCredential = secretCredential();
    expect(newCredential.password).not.toBe(oldCredential.password);
    const both = [digestId(oldCredential), digestId(newCredential)].sort();
    expect(Object.values(await tenantAcls())).toEqual(nodesBefore.map(() => both));

    // The kubelet has not updated the pods' files yet: the members go on with the old
    // password alone for longer than a lease (2/3 of the session timeout).
    await sleep(sessionTimeoutMs);

    // 2. The files change, and each member adds the new password to its live session.
    writeFileSync(credentialFile, formatCredential(newCredential));
    await Promise.all(members.map((m) => m.authenticate(newCredential)));
    await sleep(2000);

    // 3. --retire-old: only the new password opens any node of the tenant.
    const retired = await tenantAdd('--retire-old');
    expect([retired.code, retired.stderr]).toEqual([0, '']);
    expect(retired.stdout).toContain('retired 1 old password of zkleader-shop');
    const retiredAt = Date.now();
    expect(Object.values(await tenantAcls())).toEqual(nodesBefore.map(() => [digestId(newCredential)]));
    await sleep(sessionTimeoutMs);

    // Over the whole history since the start: one leader, one epoch, every member, never unknown.
    const recorded = history.filter((r) => r.at >= start);
    const summary = (r: Recorded) => `${r.member}: ${r.snapshot.state} leader=${r.snapshot.leader?.pod ?? '-'} epoch=${r.snapshot.epoch ?? '-'} members=${r.snapshot.members.map((m) => m.pod).join(',')}`;
    const expected = (r: Recorded) => `${r.member}: ${r.member === leader ? 'leader' : 'follower'} leader=${leader} epoch=${epoch} members=${order}`;
    expect(recorded.map(summary)).toEqual(recorded.map(expected));
    // Not a vacuous history: every member kept renewing (an update per heartbeat) after the old password was retired.
    for (const pod of pods) expect(recorded.filter((r) => r.member === pod && r.at > retiredAt + 2000).length).toBeGreaterThanOrEqual(2);
    expect(denied).toEqual([]);
    expect(problems.filter((p) => p.at >= start)).toEqual([]);

    // The old password alone opens nothing any more; the new one does.
    const oldOnly = await open(oldCredential);
    expect({
      list: await resultCode(oldOnly.getChildren(electionPath)),
      read: await resultCode(oldOnly.get(electionPath)),
      create: await resultCode(oldOnly.create(`${electionPath}/intruder-n_`, '{}', 'ephemeral-sequential', creatorAllAcl)),
      setData: await resultCode(oldOnly.set(`/zkleader/${namespace}`, 'x')),
      createInTenant: await resultCode(oldOnly.create(`/zkleader/${namespace}/_locks`, '', 'persistent', creatorAllAcl)),
    }).toEqual({ list: 'NOAUTH', read: 'NOAUTH', create: 'NOAUTH', setData: 'NOAUTH', createInTenant: 'NOAUTH' });
    const newOnly = await open(newCredential);
    expect((await newOnly.getChildren(electionPath)).length).toBe(pods.length);

    // A node a member makes after the retirement carries the tenant's ACL of now, not the
    // retired password its live session still holds (the creator-only ACL would).
    const follower = (await admin.getChildren(electionPath)).sort((a, b) => a.slice(-10).localeCompare(b.slice(-10)))[1] as string;
    await admin.delete(`${electionPath}/${follower}`);
    let rejoined: string | undefined;
    for (const deadline = Date.now() + 20_000; !rejoined && Date.now() < deadline; await sleep(50)) {
      const nodes = await admin.getChildren(electionPath);
      if (nodes.length === pods.length && !nodes.includes(follower)) rejoined = nodes.find((n) => n.slice(-10) > follower.slice(-10));
    }
    expect(rejoined).toBeDefined();
    expect((await admin.getAcl(`${electionPath}/${rejoined}`))?.acl.map((e) => e.id)).toEqual([digestId(newCredential)]);
  }, 90_000);
});
