import { afterAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { LeaderElection } from '../../zookeeper/election.js';
import type { ElectionSnapshot } from '../../zookeeper/electionSnapshot.js';
import { leaderEpochs } from '../support/leaderHistory.js';
import { useSidecarFixture } from '../support/sidecarFixture.js';
import { waitForAgreement } from '../support/sidecarProcess.js';

// Real 3-node ZooKeeper; sidecars as real child processes where signals matter.
const fixture = useSidecarFixture(3);
const { startSidecars } = fixture;

function bigEpoch(epoch: string | null | undefined): bigint {
  if (!epoch) throw new Error(`expected an epoch, got ${String(epoch)}`);
  return BigInt(epoch);
}

describe('sidecar processes in one election', () => {
  it('3 candidates: exactly one leader, every file agrees, members in election order', async () => {
    const group = await startSidecars('three', 3);
    const recording = await fixture.recordHistory(group);
    const { leader, epoch } = await waitForAgreement(group, 15_000);
    // The first to join leads.
    expect(leader.podName).toBe('three-0');
    for (const s of group) {
      const doc = s.document();
      expect(doc).toMatchObject({ election: 'test/three', epoch, leader: { pod: 'three-0', ip: '127.0.0.1', uid: 'uid-three-0' } });
      expect(doc?.members.map((m) => m.pod)).toEqual(['three-0', 'three-1', 'three-2']);
      expect(doc?.state).toBe(s === leader ? 'leader' : 'follower');
      expect(s.leaderFile()).toBe('three-0\n');
      // The lease: 2/3 of the timeout after an earlier renewal (or the session's start), so
      // ending after renewedAt and no later than renewedAt + 2/3 of the timeout.
      const lease = Date.parse(doc?.validUntil ?? '') - Date.parse(doc?.renewedAt ?? '');
      expect(lease).toBeGreaterThan(0);
      expect(lease).toBeLessThanOrEqual(Math.floor((4000 * 2) / 3));
    }
    const http = await group[1]?.http('/');
    expect(http).toEqual({ status: 200, body: '{"name":"three-0"}\n' });
    const readyz = await group[1]?.http('/readyz');
    expect(readyz?.status).toBe(200);
    const history = await recording.expectSafe();
    expect(leaderEpochs(history)).toEqual([epoch]);
  });

  it('graceful handover (SIGTERM) and crash (SIGKILL): new leaders, increasing epochs, never two leaders', async () => {
    const group = await startSidecars('handover', 3);
    const recording = await fixture.recordHistory(group);
    const first = await waitForAgreement(group, 15_000);

    const stoppedAt = Date.now();
    const exit = await first.leader.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    // The stopped member said follower before it let go of its node.
    expect(first.leader.document()).toMatchObject({ state: 'follower', isLeader: false });
    const rest = group.filter((s) => s !== first.leader);
    const second = await waitForAgreement(rest, 10_000);
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
    expect(second.leader.podName).toBe('handover-1');
    expect(bigEpoch(second.epoch)).toBeGreaterThan(bigEpoch(first.epoch));

    const killedAt = Date.now();
    await second.leader.kill();
    const survivor = rest.filter((s) => s !== second.leader);
    const third = await survivor[0]?.waitFor((d) => d.isLeader, 15_000, 'leadership after the crash');
    // A crashed leader is replaced only once ZooKeeper expires its session (4 s).
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(3500);
    expect(bigEpoch(third?.epoch)).toBeGreaterThan(bigEpoch(second.epoch));

    // The whole history, the killed leader's file included: its lease ran out before the
    // third leader's since; the handed-over one ended when it said follower.
    const history = await recording.expectSafe();
    expect(leaderEpochs(history)).toEqual([first.epoch, second.epoch, third?.epoch]);
  }, 60_000);
});

describe('10 candidates (in-process election instances, one session each)', () => {
  const elections: LeaderElection[] = [];
  afterAll(async () => {
    await Promise.all(elections.map((e) => e.close()));
  });

  it('elects exactly one leader that every member names, with the same epoch and member order', async () => {
    const logger = pino({ level: 'silent' });
    const latest = new Map<string, ElectionSnapshot>();
    for (let i = 0; i < 10; i++) {
      const pod = `ten-${i}`;
      const election = new LeaderElection({
        connectString: fixture.ensemble().connectString,
        sessionTimeoutMs: 4000,
        electionPath: '/zkleader/test/ten',
        self: { pod, ip: null, uid: null, namespace: 'test', startedAt: new Date().toISOString() },
        logger,
      });
      election.on('update', (snapshot) => latest.set(pod, snapshot));
      elections.push(election);
      election.start();
    }
    const deadline = Date.now() + 20_000;
    const agreed = () => {
      const snaps = [...latest.values()];
      return (
        snaps.length === 10 &&
        snaps.filter((s) => s.isLeader).length === 1 &&
        snaps.every((s) => s.epoch === snaps[0]?.epoch && s.leader?.pod === snaps[0]?.leader?.pod && s.members.length === 10)
      );
    };
    while (!agreed() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const snaps = [...latest.values()];
    expect(snaps.filter((s) => s.isLeader)).toHaveLength(1);
    const order = snaps[0]?.members.map((m) => m.pod);
    for (const s of snaps) {
      expect(s.leader?.pod).toBe(order?.[0]);
      expect(s.epoch).toBe(snaps[0]?.epoch);
      expect(s.members.map((m) => m.pod)).toEqual(order);
    }
    expect(new Set(order).size).toBe(10);
  }, 40_000);
});
