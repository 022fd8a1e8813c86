import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { leaderEpochs } from '../support/leaderHistory.js';
import { serverOfMember } from '../support/nemesis.js';
import { useSidecarFixture } from '../support/sidecarFixture.js';
import { waitForAgreement, type SidecarProcess } from '../support/sidecarProcess.js';
import type { ZooKeeperServer } from '../support/zookeeperEnsemble.js';

// Faults of ZooKeeper and of the leader process, against a real 3-node ensemble.
const fixture = useSidecarFixture(3);
const { startSidecars } = fixture;

/** The server that holds the sidecar's current session. */
async function serverOf(sidecar: SidecarProcess): Promise<ZooKeeperServer> {
  const server = await serverOfMember(fixture.ensemble(), sidecar);
  if (!server) throw new Error(`no server lists the session of ${sidecar.podName}: ${sidecar.logs}`);
  return server;
}

describe('sidecar under faults', () => {
  it('a leader paused (SIGSTOP) past the session timeout: its validUntil passes before anyone else leads; on resume it steps down', async () => {
    const group = await startSidecars('paused', 3);
    // Recorded across SIGSTOP and SIGCONT: the frozen leader's file keeps saying what it said, and that counts.
    const recording = await fixture.recordHistory(group);
    const first = await waitForAgreement(group, 15_000);
    const frozen = first.leader;
    frozen.signal('SIGSTOP');
    const frozenDoc = frozen.document();
    const others = group.filter((s) => s !== frozen);
    const successorDoc = await recording.recorder.guard(Promise.any(others.map((s) => s.waitFor((d) => d.isLeader, 20_000, 'leadership after the pause'))));
    // The file the frozen leader's app sees was valid only until before the successor began.
    expect(frozenDoc?.isLeader).toBe(true);
    expect(Date.parse(frozenDoc?.validUntil ?? '')).toBeLessThan(Date.parse(successorDoc.since));
    expect(BigInt(successorDoc.epoch ?? '0')).toBeGreaterThan(BigInt(first.epoch));

    frozen.signal('SIGCONT');
    const resumed = await recording.recorder.guard(
      frozen.waitFor((d) => d.state === 'follower' && d.leader?.pod === successorDoc.self.pod, 20_000, 'stepping down after resume'),
    );
    expect(resumed.epoch).toBe(successorDoc.epoch);
    await recording.recorder.guard(waitForAgreement(group, 15_000));
    // Over the whole history, pause and resume included: one valid leader at a time, the
    // frozen lease over before the successor's since, epochs that are czxids and grow.
    const history = await recording.expectSafe();
    expect(leaderEpochs(history)).toEqual([first.epoch, successorDoc.epoch]);
    // The frozen member was sampled after it resumed: its step-down is in the history.
    expect(history.files.some((o) => o.member === frozen.podName && o.doc?.state === 'follower' && o.at > Date.parse(successorDoc.since))).toBe(true);
  }, 60_000);

  it('one ZooKeeper server killed: sessions survive and leadership does not change', async () => {
    const group = await startSidecars('onedown', 3);
    const recording = await fixture.recordHistory(group);
    const before = await waitForAgreement(group, 15_000);
    // Kill the server the leader is connected to: the harder case (its connection is cut).
    const victim = await serverOf(before.leader);
    await victim.kill();
    // Longer than the session timeout: any session that did not survive would have shown.
    await sleep(5000);
    const after = await waitForAgreement(group, 10_000);
    // It stepped down while cut off (connection rule) and resumed within its session.
    expect(before.leader.logs).toContain('stepping down until reconnected');
    expect(after.leader.podName).toBe(before.leader.podName);
    expect(after.epoch).toBe(before.epoch);
    const history = await recording.expectSafe();
    expect(leaderEpochs(history)).toEqual([before.epoch]);
    await victim.start();
    await victim.waitServing();
  }, 60_000);

  it("the leader's ZooKeeper server paused (SIGSTOP): it steps down, reconnects elsewhere within its session, and leads again with the same epoch", async () => {
    // 8 s: the C client notices a silent server after two thirds of it and moves on well before expiry.
    const group = await startSidecars('frozenzk', 3, '8s');
    const recording = await fixture.recordHistory(group);
    const before = await waitForAgreement(group, 15_000);
    const victim = await serverOf(before.leader);
    await victim.pause();
    try {
      // The unknown state lasts only until the reconnection (milliseconds on loopback), too
      // short to catch by sampling the file: the log line says it stepped down.
      const deadline = Date.now() + 15_000;
      while (!before.leader.logs.includes('stepping down until reconnected')) {
        if (Date.now() > deadline) throw new Error(`${before.leader.podName} did not step down while its server was frozen: ${before.leader.logs}`);
        await sleep(50);
      }
      const after = await recording.recorder.guard(waitForAgreement(group, 20_000));
      expect(after.leader.podName).toBe(before.leader.podName);
      expect(after.epoch).toBe(before.epoch);
    } finally {
      await victim.resume();
    }
    await victim.waitServing();
    const history = await recording.expectSafe();
    expect(leaderEpochs(history)).toEqual([before.epoch]);
  }, 90_000);

  it('all servers stopped past the session timeout: every member says unknown; after the restart exactly one leader', async () => {
    const group = await startSidecars('alldown', 3);
    const recording = await fixture.recordHistory(group);
    await waitForAgreement(group, 15_000);
    await Promise.all(fixture.ensemble().servers.map((s) => s.stop()));
    for (const s of group) {
      const doc = await s.waitFor((d) => d.state === 'unknown', 5000, 'state unknown while ZooKeeper is down');
      expect(doc).toMatchObject({ isLeader: false, leader: null, epoch: null });
    }
    await sleep(5000);
    for (const s of group) expect(s.document()?.state).toBe('unknown');
    expect((await group[0]?.http('/readyz'))?.body).toContain('ZooKeeper');

    await Promise.all(fixture.ensemble().servers.map((s) => s.start()));
    await Promise.all(fixture.ensemble().servers.map((s) => s.waitServing()));
    await recording.recorder.guard(waitForAgreement(group, 30_000));
    await recording.expectSafe();
  }, 90_000);
});
