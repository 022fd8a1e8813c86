import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverOfMember } from '../support/nemesis.js';
import { useSidecarFixture } from '../support/sidecarFixture.js';
import { waitForAgreement, type SidecarProcess } from '../support/sidecarProcess.js';
import type { ZooKeeperServer } from '../support/zookeeperEnsemble.js';

// Found by an attack on the first lease fix: a completed sync proves the session alive, but
// its touch reaches the quorum's leader only with the follower's next ping answer. A leader
// sidecar paused (SIGSTOP, GC, CPU starvation) for D in (T/3, 2/3 T) renews on resume with a
// synced read at s; if its server is cut off from the quorum before that ping answer, the
// quorum expires the session at (last touch before the pause) + T = s - D + T, while a lease
// counted from s would run to s + 2/3 T. The lease is counted from an earlier renewal
// (election.ts leaseEnd); this test fails when it is counted from the latest.
const fixture = useSidecarFixture(3, { partitionable: true, syncLimit: 30 });
const sessionTimeoutMs = 4000;

async function serverOf(member: SidecarProcess): Promise<ZooKeeperServer> {
  const server = await serverOfMember(fixture.ensemble(), member);
  if (!server) throw new Error(`no server lists the session of ${member.podName}`);
  return server;
}

function validLeaders(group: readonly SidecarProcess[], now: number): string[] {
  const out: string[] = [];
  for (const m of group) {
    let d;
    try {
      d = m.document();
    } catch {
      continue;
    }
    if (d?.isLeader && d.validUntil && Date.parse(d.validUntil) > now) out.push(`${m.podName}(validUntil ${d.validUntil}, since ${d.since})`);
  }
  return out;
}

describe('a leader paused, renewing once on resume through a server that is then cut off', () => {
  it('never holds a lease past the quorum expiring its session: never two valid leaders', async () => {
    const group = await fixture.startSidecars('paused-renewal', 3, `${sessionTimeoutMs}ms`);
    let overlap: string[] | null = null;
    const log: string[] = [];
    const recording = await fixture.recordHistory(group);
    for (let attempt = 0; attempt < 3 && !overlap; attempt++) {
      const before = await waitForAgreement(group, 30_000);
      const x = before.leader;
      let server = await serverOf(x);
      const zkLeader = await fixture.ensemble().leader();
      if (server === zkLeader) {
        fixture.ensemble().cutClients(server, 'drop');
        await sleep(300);
        fixture.ensemble().heal();
        await waitForAgreement(group, 30_000);
        server = await serverOf(x);
        if (server === (await fixture.ensemble().leader())) continue;
      }
      // Pause right after a heartbeat renewal (its last touch is then ~ the pause).
      const r0 = x.document()?.renewedAt;
      await x.waitFor((d) => d.renewedAt !== r0, 5000, 'a heartbeat renewal');
      x.signal('SIGSTOP');
      const stoppedAt = Date.now();
      await sleep(2400);
      const r1 = x.document()?.renewedAt;
      x.signal('SIGCONT');
      // Cut its server off the moment the renewal after resume is on disk.
      const deadline = Date.now() + 1500;
      let renewed = false;
      while (Date.now() < deadline) {
        const d = x.document();
        if (d && d.renewedAt !== r1 && d.isLeader) {
          renewed = true;
          break;
        }
        await new Promise((r) => setImmediate(r));
      }
      if (!renewed) {
        log.push(`attempt ${attempt}: no renewal after resume`);
        await sleep(6000);
        continue;
      }
      fixture.ensemble().isolate(server, 'freeze');
      const cutAt = Date.now();
      const xdoc = x.document();
      log.push(`attempt ${attempt}: stopped ${new Date(stoppedAt).toISOString()} cut ${new Date(cutAt).toISOString()} x renewedAt ${xdoc?.renewedAt} validUntil ${xdoc?.validUntil}`);
      try {
        const end = Date.now() + 6000;
        while (Date.now() < end) {
          const now = Date.now();
          const v = validLeaders(group, now);
          if (v.length > 1) {
            overlap = [new Date(now).toISOString(), ...v];
            break;
          }
          await sleep(5);
        }
      } finally {
        fixture.ensemble().heal();
      }
      await sleep(2000);
      log.push(`x logs tail: ${x.logs.split('\n').filter((l) => /stepping|lease|lost|closed|connected/.test(l)).slice(-6).join('\n')}`);
    }
    let safeError: string | null = null;
    try {
      await recording.expectSafe();
    } catch (err) {
      safeError = (err as Error).message;
    }
    expect({ overlap, safeError, attempts: log.filter((l) => l.includes(' cut ')).length > 0 ? 'cut' : log }).toEqual({ overlap: null, safeError: null, attempts: 'cut' });
  }, 120_000);
});
