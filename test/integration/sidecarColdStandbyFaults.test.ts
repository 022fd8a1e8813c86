import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiEmulator } from '../support/apiEmulator/index.js';
import { useSidecarFixture } from '../support/sidecarFixture.js';
import { SidecarProcess, waitForAgreement } from '../support/sidecarProcess.js';
import { SessionPool } from '../support/zookeeperSessions.js';

// Cold standby (--start leader) under the faults an attack review found: for each, the
// window in which a successor's /startz answers 200 (its app would start) while the old
// leader's pod (whose app started) still exists in the API — its app still runs: the kubelet
// stops it only once the pod is deleted.

const fixture = useSidecarFixture(3);
let emu: ApiEmulator;
let kubeconfig: string;
const namespace = 'test';
let started: SidecarProcess[] = [];
const pool = new SessionPool(() => fixture.ensemble().connectString);

beforeAll(async () => {
  emu = await ApiEmulator.start();
  kubeconfig = await emu.kubeconfigFile();
});
afterAll(async () => {
  pool.closeAll();
  await emu?.close();
});
afterEach(async () => {
  emu.clearFaults();
  await Promise.all(started.map((s) => s.close()));
  started = [];
  // Servers paused by a test are resumed.
  for (const s of fixture.ensemble().servers) if (s.paused) await s.resume();
});

function putPod(name: string, election: string): void {
  emu.putPod({
    metadata: { name, namespace, uid: `uid-${name}`, labels: { 'zkleader.io/election': election, 'zkleader.io/role': 'follower' } },
    spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] },
  });
}

/** Members one at a time; `zookeeperOf(i)` picks each member's connect string. */
async function standbys(election: string, count: number, zookeeperOf: (i: number) => string = () => fixture.ensemble().connectString): Promise<SidecarProcess[]> {
  const group: SidecarProcess[] = [];
  for (let i = 0; i < count; i++) {
    const podName = `${election}-${i}`;
    putPod(podName, election);
    const s = await SidecarProcess.start({ zookeeper: zookeeperOf(i), election, podName, namespace, kubeconfig, extraArgs: ['--start', 'leader', '--label-check', '1s'] });
    started.push(s);
    group.push(s);
  }
  return group;
}

async function startz(s: SidecarProcess): Promise<number> {
  try {
    return (await s.http('/startz')).status;
  } catch {
    return -1;
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * Samples every 20 ms: when `successor` first answers /startz 200, and when the old leader's
 * pod left the API. overlapMs: the time the successor's app may run beside the old app
 * (null: the old pod was still there at the end; open-ended).
 */
class OverlapMeter {
  successorStartedAt: number | null = null;
  oldPodGoneAt: number | null = null;
  private timer: NodeJS.Timeout;
  constructor(
    private readonly old: SidecarProcess,
    private readonly successor: SidecarProcess,
  ) {
    this.timer = setInterval(() => void this.sample(), 20);
  }
  private busy = false;
  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      if (this.oldPodGoneAt === null && emu.getPod(namespace, this.old.podName) === undefined) this.oldPodGoneAt = now;
      if (this.successorStartedAt === null && (await startz(this.successor)) === 200) this.successorStartedAt = Date.now();
    } finally {
      this.busy = false;
    }
  }
  stop(): { successorStartedAt: number | null; oldPodGoneAt: number | null; overlapMs: number | null } {
    clearInterval(this.timer);
    if (this.oldPodGoneAt === null && emu.getPod(namespace, this.old.podName) === undefined) this.oldPodGoneAt = Date.now();
    const { successorStartedAt, oldPodGoneAt } = this;
    const overlapMs = successorStartedAt === null ? 0 : oldPodGoneAt === null ? null : Math.max(0, oldPodGoneAt - successorStartedAt);
    return { successorStartedAt, oldPodGoneAt, overlapMs };
  }
}

describe('cold standby: a started leader whose pod must go', () => {
  it('the sidecar alone stopped gracefully (a liveness restart) while its app runs: it deletes its pod before its node goes, so the successor starts only after', async () => {
    const group = await standbys('sigterm', 2);
    const first = await waitForAgreement(group, 15_000);
    await until(async () => (await startz(first.leader)) === 200, 5000, 'leader /startz 200');
    const successor = group.find((s) => s !== first.leader) as SidecarProcess;
    const meter = new OverlapMeter(first.leader, successor);
    first.leader.signal('SIGTERM');
    await first.leader.exited;
    await until(async () => (await startz(successor)) === 200, 20_000, 'successor /startz 200');
    await sleep(300);
    const m = meter.stop();
    expect(emu.getPod(namespace, first.leader.podName)).toBeUndefined();
    expect(m.oldPodGoneAt).not.toBeNull();
    expect(m.overlapMs).toBe(0);
    expect(first.leader.logs).toContain('deleting the own pod first');
  }, 60_000);

  it('a graceful stop of a standby (its app never started) deletes nothing', async () => {
    const group = await standbys('standbystop', 2);
    const first = await waitForAgreement(group, 15_000);
    const standby = group.find((s) => s !== first.leader) as SidecarProcess;
    expect(await startz(standby)).toBe(503);
    standby.signal('SIGTERM');
    await standby.exited;
    expect(emu.getPod(namespace, standby.podName)).toBeDefined();
    expect(emu.getPod(namespace, first.leader.podName)).toBeDefined();
  }, 60_000);

  it('the API down while a started leader loses its session: it is not ready (out of its Services) while its pod cannot be deleted, and deletes it once the API is back', async () => {
    const group = await standbys('apidown', 2);
    const first = await waitForAgreement(group, 15_000);
    await until(async () => (await startz(first.leader)) === 200, 5000, 'leader /startz 200');
    expect((await first.leader.http('/readyz')).status).toBe(200);
    const successor = group.find((s) => s !== first.leader) as SidecarProcess;
    const removeFault = emu.addFault({ verb: 'delete', resource: 'pods', status: 503 });
    first.leader.signal('SIGSTOP');
    await until(async () => (await startz(successor)) === 200, 30_000, 'successor /startz 200');
    first.leader.signal('SIGCONT');
    await until(async () => (await first.leader.http('/readyz')).body.includes('cannot delete the own pod after losing leadership'), 20_000, 'the failing deletion on /readyz');
    const readyz = await first.leader.http('/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.body).toContain('leadership lost after the app started');
    expect(emu.getPod(namespace, first.leader.podName)).toBeDefined();
    removeFault();
    await until(() => emu.getPod(namespace, first.leader.podName) === undefined, 45_000, 'old pod deleted after the API came back');
  }, 120_000);
});
