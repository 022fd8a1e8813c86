import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type ZooKeeper from 'zookeeper';
import { LeaderElection } from '../../zookeeper/election.js';
import type { ElectionSnapshot } from '../../zookeeper/electionSnapshot.js';
import { connectZooKeeper } from '../support/zookeeperClient.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';
import { ZooKeeperProxy } from '../support/zookeeperProxy.js';

// The election's safety rules (DESIGN.md "ZooKeeper layout and the election"), each tested
// by what the member published: every update it emitted, with the time it was emitted.
// Each test here fails when the rule it names is removed from sidecar/election.ts.

const sessionTimeoutMs = 6000;

let ensemble: ZooKeeperEnsemble;
let observer: ZooKeeper;
const elections: LeaderElection[] = [];
const proxies: ZooKeeperProxy[] = [];

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  observer = await connectZooKeeper(ensemble.connectString);
}, 60_000);

afterEach(async () => {
  await Promise.all(elections.splice(0).map((e) => e.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  observer?.close();
  await ensemble?.close();
});

interface Published {
  readonly at: number;
  readonly snapshot: ElectionSnapshot;
}

interface Member {
  readonly election: LeaderElection;
  readonly history: Published[];
  readonly problems: (string | null)[];
  readonly leaseExpired: Date[];
  latest(): ElectionSnapshot | undefined;
}

function startMember(pod: string, electionPath: string, connectString = ensemble.connectString): Member {
  const election = new LeaderElection({
    connectString,
    sessionTimeoutMs,
    electionPath,
    self: { pod, ip: null, uid: null, namespace: 'test', startedAt: new Date().toISOString() },
    logger: pino({ level: 'silent' }),
  });
  const member: Member = {
    election,
    history: [],
    problems: [],
    leaseExpired: [],
    latest: () => member.history.at(-1)?.snapshot,
  };
  election.on('update', (snapshot) => member.history.push({ at: Date.now(), snapshot }));
  election.on('problem', (problem) => member.problems.push(problem));
  election.on('leaseExpired', (validUntil) => member.leaseExpired.push(validUntil));
  elections.push(election);
  election.start();
  return member;
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** The states a member published, with consecutive repeats folded: ['leader@12', 'unknown', ...]. */
function states(member: Member): string[] {
  const out: string[] = [];
  for (const { snapshot } of member.history) {
    const label = snapshot.state === 'unknown' ? 'unknown' : `${snapshot.state}@${snapshot.epoch ?? '-'}`;
    if (out.at(-1) !== label) out.push(label);
  }
  return out;
}

describe('election safety rules', () => {
  it('heartbeat: an idle leader renews its lease from synced reads and leads without a gap for three session timeouts', async () => {
    const leader = startMember('idle-0', '/zkleader/test/idle');
    await until('leadership', () => leader.latest()?.isLeader === true);
    const from = leader.history.length;
    const end = Date.now() + 3 * sessionTimeoutMs;
    while (Date.now() < end) {
      const latest = leader.latest();
      // At every moment the published lease is still running: it never lapses while idle.
      expect(latest?.isLeader).toBe(true);
      expect(latest?.validUntil?.getTime()).toBeGreaterThan(Date.now());
      await sleep(100);
    }
    const renewals = leader.history.slice(from);
    expect(renewals.every((p) => p.snapshot.state === 'leader')).toBe(true);
    // A renewal at least every quarter of the timeout (with room for a slow machine).
    expect(renewals.length).toBeGreaterThanOrEqual(8);
    expect(leader.leaseExpired).toEqual([]);
  }, 60_000);

  it('disconnect: a leader publishes unknown at once, long before its lease would run out', async () => {
    const server = ensemble.servers[0];
    if (!server) throw new Error('no server');
    const proxy = await ZooKeeperProxy.start(server.clientPort);
    proxies.push(proxy);
    const leader = startMember('cut-0', '/zkleader/test/cut', proxy.connectString);
    await until('leadership', () => leader.latest()?.isLeader === true);
    const lastLease = leader.latest()?.validUntil?.getTime() ?? 0;
    const cutAt = Date.now();
    // Every connection through the proxy is destroyed and no new one is accepted.
    await proxy.close();
    await until('unknown after the cut', () => leader.latest()?.state === 'unknown', 5000);
    const unknownAt = leader.history.at(-1)?.at ?? Infinity;
    // The connection rule, not the lease: within a second of the cut, well before the lease ended.
    expect(unknownAt - cutAt).toBeLessThan(1000);
    expect(unknownAt).toBeLessThan(lastLease - 1000);
    expect(leader.latest()).toMatchObject({ isLeader: false, leader: null, epoch: null });
  }, 60_000);

  it('ownership: a node at our name that this session does not own (a persistent impostor) is never led on, nor followed', async () => {
    const path = '/zkleader/test/impostor';
    const member = startMember('owner-0', path);
    await until('leadership', () => member.latest()?.isLeader === true);
    const [node] = (await observer.get_children(path, false)) as string[];
    const firstEpoch = member.latest()?.epoch;
    const impostorData = JSON.stringify({ pod: 'impostor', ip: null, uid: null, namespace: 'test', startedAt: new Date().toISOString() });
    const beforeSwap = member.history.length;
    // Sent back to back on one connection: the member's synced check, set off by the delete,
    // reaches the server after the create and finds a node of its name that it does not own.
    await Promise.all([observer.delete_(`${path}/${node}`, -1), observer.create(`${path}/${node}`, impostorData, 0)]);
    // It steps down and joins with a node of its own; the persistent impostor is no
    // candidate (members only make ephemeral ones), so it leads again on its new node.
    await until('leading on a new node', () => member.latest()?.isLeader === true && member.latest()?.epoch !== firstEpoch);
    await sleep(500);
    const afterSwap = member.history.slice(beforeSwap);
    expect(afterSwap[0]?.snapshot.state).toBe('unknown');
    expect(afterSwap.filter((p) => p.snapshot.leader?.pod === 'impostor')).toEqual([]);
    const impostor = (await observer.exists(`${path}/${node}`, false)) as { czxid: number };
    expect(afterSwap.filter((p) => p.snapshot.epoch === String(impostor.czxid))).toEqual([]);
    expect(BigInt(member.latest()?.epoch ?? '0')).toBeGreaterThan(BigInt(firstEpoch ?? '0'));
    await observer.delete_(`${path}/${node}`, -1);
  }, 60_000);

  it('own node deleted while the session lives: the leader steps down (unknown) before it rejoins with a new node', async () => {
    const path = '/zkleader/test/deleted';
    const member = startMember('deleted-0', path);
    await until('leadership', () => member.latest()?.isLeader === true);
    const firstEpoch = member.latest()?.epoch as string;
    const [node] = (await observer.get_children(path, false)) as string[];
    await observer.delete_(`${path}/${node}`, -1);
    await until('leading on a new node', () => member.latest()?.isLeader === true && member.latest()?.epoch !== firstEpoch);
    const secondEpoch = member.latest()?.epoch as string;
    expect(states(member)).toEqual([`leader@${firstEpoch}`, 'unknown', `leader@${secondEpoch}`]);
    expect(BigInt(secondEpoch)).toBeGreaterThan(BigInt(firstEpoch));
    expect((await observer.get_children(path, false)) as string[]).toHaveLength(1);
  }, 60_000);

  it('a check that fails for another reason than the connection (NOAUTH): the leader steps down, says why, and leads again once it may read', async () => {
    const path = '/zkleader/test/noauth';
    const member = startMember('noauth-0', path);
    await until('leadership', () => member.latest()?.isLeader === true);
    const epoch = member.latest()?.epoch;
    // Everything but READ for everyone: getChildren fails with NOAUTH, the connection stays up.
    const noRead = [{ scheme: 'world', auth: 'anyone', perm: 31 - 1 }];
    await observer.set_acl(path, -1, noRead);
    try {
      await until('unknown while it cannot read the election', () => member.latest()?.state === 'unknown', sessionTimeoutMs + 2000);
      await until('the reason on /readyz', () => member.problems.some((p) => p?.includes('NOAUTH') === true), sessionTimeoutMs);
      // It stepped down no later than its lease said: the leader's app stopped acting as leader in time.
      const lastLeader = member.history.filter((p) => p.snapshot.isLeader).at(-1);
      const steppedDownAt = member.history.find((p) => p.at >= (lastLeader?.at ?? 0) && p.snapshot.state === 'unknown')?.at ?? Infinity;
      expect(steppedDownAt).toBeLessThanOrEqual((lastLeader?.snapshot.validUntil?.getTime() ?? 0) + 200);
      expect(member.leaseExpired.length).toBeGreaterThanOrEqual(1);
    } finally {
      await observer.set_acl(path, -1, [{ scheme: 'world', auth: 'anyone', perm: 31 }]);
    }
    await until('leading again', () => member.latest()?.isLeader === true);
    expect(member.latest()?.epoch).toBe(epoch);
    expect(member.problems.at(-1)).toBeNull();
  }, 60_000);
});
