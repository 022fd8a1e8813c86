import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { LeaderElection } from '../../zookeeper/election.js';
import type { ElectionSnapshot } from '../../zookeeper/electionSnapshot.js';
import { ZooKeeperSession } from '../../zookeeper/session.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// Issue 15: an idle member's ZooKeeper cost must not grow with the election. The heartbeat
// (every T/4) reads the election node (its stat; a get, which needs READ like the list) after
// its sync — a few bytes — and the children
// are listed again only when their version (cversion) moved: so an idle member never lists,
// a join or leave that no watch of the member reports is still seen within a heartbeat, and
// churn costs each member at most one list per heartbeat period, however many changes.
//
// Requests are counted on the members' real sessions: the prototype methods are wrapped to
// count (per session id) and call through; nothing is mocked.

const sessionTimeoutMs = 4000;
const heartbeatMs = sessionTimeoutMs / 4;

let ensemble: ZooKeeperEnsemble;
const elections: LeaderElection[] = [];
const sessions: ZooKeeperSession[] = [];

type Counted = 'getChildren' | 'get' | 'sync';
const calls = new Map<string, Record<Counted, number>>();
const originals = new Map<Counted, (...args: never[]) => unknown>();

function countCalls(method: Counted): void {
  const proto = ZooKeeperSession.prototype as unknown as Record<Counted, (this: ZooKeeperSession, ...args: unknown[]) => unknown>;
  const original = proto[method];
  originals.set(method, original as (...args: never[]) => unknown);
  proto[method] = function (this: ZooKeeperSession, ...args: unknown[]) {
    const id = this.connected ? this.sessionId : 'not connected';
    const entry = calls.get(id) ?? { getChildren: 0, get: 0, sync: 0 };
    entry[method]++;
    calls.set(id, entry);
    return original.apply(this, args);
  };
}

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  for (const method of ['getChildren', 'get', 'sync'] as const) countCalls(method);
}, 60_000);

afterEach(async () => {
  await Promise.all(elections.splice(0).map((e) => e.close()));
  for (const s of sessions.splice(0)) s.close();
});

afterAll(async () => {
  const proto = ZooKeeperSession.prototype as unknown as Record<Counted, unknown>;
  for (const [method, original] of originals) proto[method] = original;
  await ensemble?.close();
});

interface Member {
  readonly pod: string;
  readonly election: LeaderElection;
  readonly renewals: number[];
  latest(): ElectionSnapshot | null;
  /** Requests of this member's current session so far. */
  count(method: Counted): number;
}

function startMember(pod: string, electionPath: string): Member {
  const election = new LeaderElection({
    connectString: ensemble.connectString,
    sessionTimeoutMs,
    electionPath,
    self: { pod, ip: null, uid: null, namespace: 'test', startedAt: new Date().toISOString() },
    logger: pino({ level: process.env.HB_LOG ?? 'silent' }),
  });
  const renewals: number[] = [];
  election.on('update', (snapshot) => {
    if (snapshot.renewedAt) renewals.push(snapshot.renewedAt.getTime());
  });
  elections.push(election);
  election.start();
  return {
    pod,
    election,
    renewals,
    latest: () => election.current,
    count: (method) => {
      const id = election.sessionId;
      return id ? (calls.get(id)?.[method] ?? 0) : 0;
    },
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Starts the members one after the other (each decided before the next joins): the first leads. */
async function startInOrder(pods: readonly string[], electionPath: string): Promise<Member[]> {
  const group: Member[] = [];
  for (const pod of pods) {
    const member = startMember(pod, electionPath);
    await until(`${pod} decided`, () => member.latest() !== null && member.latest()?.state !== 'unknown');
    group.push(member);
  }
  return group;
}

function memberPods(m: Member): string[] {
  return (m.latest()?.members ?? []).map((id) => id.pod).sort();
}

function settled(group: readonly Member[], leader: string, pods: readonly string[]): boolean {
  return group.every((m) => {
    const s = m.latest();
    return s !== null && s.state !== 'unknown' && s.leader?.pod === leader && memberPods(m).join() === [...pods].sort().join();
  });
}

describe('the heartbeat reads the election node stat and lists children only when they changed', () => {
  it('idle members never list the children, yet renew every heartbeat; a join or leave no watch reports is seen within a heartbeat', async () => {
    const path = '/zkleader/test/heartbeat-idle';
    const group = await startInOrder(['hb-0', 'hb-1', 'hb-2'], path);
    await until('all three settled', () => settled(group, 'hb-0', ['hb-0', 'hb-1', 'hb-2']));
    // Let the checks of the joins end, then count a quiet window of more than four heartbeats.
    await sleep(heartbeatMs * 1.5);
    const lists0 = group.map((m) => m.count('getChildren'));
    const reads0 = group.map((m) => m.count('get'));
    const syncs0 = group.map((m) => m.count('sync'));
    const renewals0 = group.map((m) => m.renewals.length);
    await sleep(heartbeatMs * 4.5);
    group.forEach((m, i) => {
      // Not one list while nothing changed…
      expect({ pod: m.pod, lists: m.count('getChildren') - (lists0[i] ?? 0) }).toEqual({ pod: m.pod, lists: 0 });
      // …but a synced read of the election node (its stat) every heartbeat, and a renewal from each.
      expect(m.count('sync') - (syncs0[i] ?? 0)).toBeGreaterThanOrEqual(4);
      expect(m.count('get') - (reads0[i] ?? 0)).toBeGreaterThanOrEqual(4);
      expect(m.renewals.length - (renewals0[i] ?? 0)).toBeGreaterThanOrEqual(4);
      // The lease is as fresh as ever: renewed within about a heartbeat.
      expect(Date.now() - (m.latest()?.renewedAt?.getTime() ?? 0)).toBeLessThan(heartbeatMs * 1.6);
      expect(m.latest()?.validUntil?.getTime()).toBeGreaterThan(Date.now());
    });

    // A join: the newcomer watches hb-2, but no member watches the newcomer (the leader
    // watches only its own node, followers the leader and their predecessor).
    const lists1 = group.map((m) => m.count('getChildren'));
    const joinedAt = Date.now();
    const newcomer = startMember('hb-3', path);
    const all = [...group, newcomer];
    await until('the join seen by every member', () => settled(all, 'hb-0', ['hb-0', 'hb-1', 'hb-2', 'hb-3']), heartbeatMs * 4);
    expect(Date.now() - joinedAt).toBeLessThan(heartbeatMs * 2.5);
    group.forEach((m, i) => expect(m.count('getChildren') - (lists1[i] ?? 0)).toBeLessThanOrEqual(2));

    // A leave of the last member: nobody watches its node.
    await sleep(heartbeatMs * 1.5);
    const lists2 = group.map((m) => m.count('getChildren'));
    const leftAt = Date.now();
    await newcomer.election.close();
    await until('the leave seen by every member', () => settled(group, 'hb-0', ['hb-0', 'hb-1', 'hb-2']), heartbeatMs * 4);
    expect(Date.now() - leftAt).toBeLessThan(heartbeatMs * 2.5);
    group.forEach((m, i) => expect(m.count('getChildren') - (lists2[i] ?? 0)).toBeLessThanOrEqual(2));
  }, 60_000);

  it('churn of many children costs each member at most one list per heartbeat, not one per change', async () => {
    const path = '/zkleader/test/heartbeat-churn';
    const group = await startInOrder(['ch-0', 'ch-1', 'ch-2'], path);
    await until('all three settled', () => settled(group, 'ch-0', ['ch-0', 'ch-1', 'ch-2']));
    await sleep(heartbeatMs * 1.5);
    // Another session creates and deletes children (not candidates) every 25 ms for 4 heartbeats.
    const churner = new ZooKeeperSession({ connectString: ensemble.connectString, sessionTimeoutMs });
    sessions.push(churner);
    await new Promise<void>((resolve) => churner.once('connected', () => resolve()));
    const lists0 = group.map((m) => m.count('getChildren'));
    const renewals0 = group.map((m) => m.renewals.length);
    const startedAt = Date.now();
    let changes = 0;
    for (let i = 0; Date.now() - startedAt < heartbeatMs * 4; i++) {
      await churner.create(`${path}/churn-${i}`, '', 'persistent');
      await churner.delete(`${path}/churn-${i}`);
      changes += 2;
      await sleep(25);
    }
    const periods = (Date.now() - startedAt) / heartbeatMs;
    expect(changes).toBeGreaterThan(40);
    group.forEach((m, i) => {
      const lists = m.count('getChildren') - (lists0[i] ?? 0);
      // One list per heartbeat that saw the version move (none of these changes fires a watch).
      expect(lists).toBeLessThanOrEqual(Math.ceil(periods) + 1);
      expect(lists).toBeGreaterThanOrEqual(2);
      // Leadership and the lease went on throughout.
      expect(m.renewals.length - (renewals0[i] ?? 0)).toBeGreaterThanOrEqual(3);
    });
    expect(settled(group, 'ch-0', ['ch-0', 'ch-1', 'ch-2'])).toBe(true);
  }, 60_000);
});

describe('when the leader goes, the followers do not list the children (issue 15: 999 lists of 53 KB at 1,000 members)', () => {
  it('a graceful failover costs no follower a list, and every member names the right leader and members', async () => {
    const path = '/zkleader/test/failover-nolist';
    const pods = ['fo-0', 'fo-1', 'fo-2', 'fo-3', 'fo-4'];
    const group = await startInOrder(pods, path);
    await until('all settled', () => settled(group, 'fo-0', pods));
    await sleep(heartbeatMs * 1.5);
    const [leader, ...rest] = group as [Member, ...Member[]];
    const lists0 = rest.map((m) => m.count('getChildren'));
    await leader.election.close();
    // Only one change happened (the leader's node deleted), so each follower's known list less
    // that node is the truth: the members published must say so.
    await until('the failover seen by every member', () => settled(rest, 'fo-1', pods.slice(1)), heartbeatMs * 2);
    rest.forEach((m, i) => expect({ pod: m.pod, lists: m.count('getChildren') - (lists0[i] ?? 0) }).toEqual({ pod: m.pod, lists: 0 }));
    // Nothing else changed: the heartbeats that follow list nothing either.
    await sleep(heartbeatMs * 2);
    rest.forEach((m, i) => expect({ pod: m.pod, lists: m.count('getChildren') - (lists0[i] ?? 0) }).toEqual({ pod: m.pod, lists: 0 }));
    expect(settled(rest, 'fo-1', pods.slice(1))).toBe(true);
  }, 60_000);

  it('when more than the leader changed (the leader and another member gone, a node added), the followers list and publish the truth', async () => {
    const path = '/zkleader/test/failover-more';
    const pods = ['fm-0', 'fm-1', 'fm-2', 'fm-3', 'fm-4'];
    const group = await startInOrder(pods, path);
    await until('all settled', () => settled(group, 'fm-0', pods));
    await sleep(heartbeatMs * 1.5);
    const [leader, second, third, ...others] = group as [Member, Member, Member, ...Member[]];
    // A non-candidate child made quietly (no watch fires for it), then the leader and the
    // last member leave together: the version moved by three, one of them the lowest node.
    const other = new ZooKeeperSession({ connectString: ensemble.connectString, sessionTimeoutMs });
    sessions.push(other);
    await new Promise<void>((resolve) => other.once('connected', () => resolve()));
    await other.create(`${path}/not-a-candidate`, '', 'persistent');
    const last = others.pop() as Member;
    const remaining = [second, third, ...others];
    const lists0 = remaining.map((m) => m.count('getChildren'));
    await Promise.all([leader.election.close(), last.election.close()]);
    const expected = [second.pod, third.pod, ...others.map((m) => m.pod)];
    await until('the changes seen by every member', () => settled(remaining, 'fm-1', expected), heartbeatMs * 4);
    // The derived list would have been wrong here: each member listed at least once.
    remaining.forEach((m, i) => expect(m.count('getChildren') - (lists0[i] ?? 0)).toBeGreaterThanOrEqual(1));
    await other.delete(`${path}/not-a-candidate`);
  }, 60_000);
});
