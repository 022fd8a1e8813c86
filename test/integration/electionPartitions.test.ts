import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverOfMember } from '../support/nemesis.js';
import { useSidecarFixture } from '../support/sidecarFixture.js';
import { waitForAgreement, type SidecarProcess } from '../support/sidecarProcess.js';
import type { ZooKeeperServer } from '../support/zookeeperEnsemble.js';

// Partitions (issue 9): a proxy on every server-to-server and client-to-server link. With
// syncLimit 30 × tickTime 200 ms, a server cut off from the quorum keeps answering its
// clients for 6 s, longer than the members' 4 s session timeout: the quorum expires the
// session of a member attached to it and elects a successor while that member still hears
// from its server. Each test records every member's leader.json and checks over the whole
// history: never two valid leaders, the old lease over before the successor's since,
// epochs that grow and are the leader node's czxid.
const fixture = useSidecarFixture(3, { partitionable: true, syncLimit: 30 });
const sessionTimeoutMs = 4000;

async function serverOf(member: SidecarProcess): Promise<ZooKeeperServer> {
  const server = await serverOfMember(fixture.ensemble(), member);
  if (!server) throw new Error(`no server lists the session of ${member.podName}: ${member.logs}`);
  return server;
}

/** The server that is the ZooKeeper ensemble's leader now. */
async function zookeeperLeader(): Promise<ZooKeeperServer> {
  const leader = await fixture.ensemble().leader();
  if (!leader) throw new Error('no ZooKeeper leader now');
  return leader;
}

describe('election under partitions', () => {
  it("(a) the leader's server cut off from the quorum: the leader stops claiming leadership before its lease ends, and one leader remains", async () => {
    const group = await fixture.startSidecars('cut-server', 3, `${sessionTimeoutMs}ms`);
    const before = await waitForAgreement(group, 20_000);
    let server = await serverOf(before.leader);
    if (server === (await zookeeperLeader())) {
      // Cutting off the quorum's leader is (b): move the member to a follower first.
      fixture.ensemble().cutClients(server, 'drop');
      await sleep(300);
      fixture.ensemble().heal();
      await waitForAgreement(group, 20_000);
      server = await serverOf(before.leader);
    }
    const recording = await fixture.recordHistory(group);
    const lastLease = Date.parse(before.leader.document()?.validUntil ?? '');
    const cutAt = Date.now();
    fixture.ensemble().isolate(server, 'freeze');
    try {
      // Its renewals (a sync first) cannot complete there: it steps down by its lease at the
      // latest, however long the server keeps answering pings and reads.
      const down = await recording.recorder.guard(before.leader.waitFor((d) => !d.isLeader, 2 * sessionTimeoutMs, 'stepping down while its server is cut off'));
      expect(Date.parse(down.since)).toBeLessThanOrEqual(Math.max(lastLease, cutAt + (2 * sessionTimeoutMs) / 3) + 100);
      // Held past the session timeout: the quorum expires whatever session stayed behind.
      await sleep(2 * sessionTimeoutMs - (Date.now() - cutAt));
    } finally {
      fixture.ensemble().heal();
    }
    // It either moved to another server within its session (same epoch) or lost it (a successor).
    const after = await waitForAgreement(group, 30_000);
    expect(BigInt(after.epoch)).toBeGreaterThanOrEqual(BigInt(before.epoch));
    await recording.expectSafe();
  }, 90_000);

  it('(b) the quorum\'s leader cut off: the ensemble elects another, the election keeps one leader', async () => {
    const group = await fixture.startSidecars('cut-quorum-leader', 3, `${sessionTimeoutMs}ms`);
    const before = await waitForAgreement(group, 20_000);
    const recording = await fixture.recordHistory(group);
    const old = await zookeeperLeader();
    fixture.ensemble().isolate(old, 'freeze');
    try {
      await fixture.ensemble().waitForQuorum(30_000);
      let current = await fixture.ensemble().leader();
      const deadline = Date.now() + 30_000;
      while (current === undefined || current === old) {
        if (Date.now() > deadline) throw new Error('the remaining servers elected no new ZooKeeper leader');
        await sleep(100);
        current = await fixture.ensemble().leader();
      }
      // Past the session timeout: members of the cut-off server that did not move lost their session.
      await sleep(2 * sessionTimeoutMs);
    } finally {
      fixture.ensemble().heal();
    }
    const after = await waitForAgreement(group, 30_000);
    expect(BigInt(after.epoch)).toBeGreaterThanOrEqual(BigInt(before.epoch));
    await recording.expectSafe();
  }, 90_000);

  it("(c) the leader cut off from its server only (its client link frozen): it steps down, moves, and leads again with the same epoch", async () => {
    const group = await fixture.startSidecars('cut-client', 3, `${sessionTimeoutMs}ms`);
    const before = await waitForAgreement(group, 20_000);
    const recording = await fixture.recordHistory(group);
    const server = await serverOf(before.leader);
    // Frozen: silence, not a reset. The client notices after 2/3 of the timeout and moves on.
    fixture.ensemble().cutClients(server, 'freeze');
    try {
      await recording.recorder.guard(before.leader.waitFor((d) => d.state === 'unknown', 10_000, 'stepping down while its link is frozen'));
      await recording.recorder.guard(before.leader.waitFor((d) => d.isLeader, 10_000, 'leading again from another server'));
    } finally {
      fixture.ensemble().heal();
    }
    const middle = await waitForAgreement(group, 20_000);
    // Within its session: the same node, the same epoch.
    expect(middle.leader).toBe(before.leader);
    expect(middle.epoch).toBe(before.epoch);

    // A reset instead of silence is covered by electionSafety ("disconnect: ... unknown at
    // once") and by the nemesis' cut-clients drop.
    await recording.expectSafe();
  }, 90_000);
});
