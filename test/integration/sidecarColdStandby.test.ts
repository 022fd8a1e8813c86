import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ApiEmulator } from '../support/apiEmulator/index.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { useSidecarFixture } from '../support/sidecarFixture.js';
import { SidecarProcess, waitForAgreement } from '../support/sidecarProcess.js';

// Cold standby (zkleader.io/start: leader, sidecar --start leader) with real sidecar
// processes, a real ZooKeeper and the API emulator: /startz answers 200 only on the leader;
// a started leader whose leadership ends deletes its own pod, with its uid as precondition.

const fixture = useSidecarFixture(1);
let emu: ApiEmulator;
let kubeconfig: string;
const namespace = 'test';

beforeAll(async () => {
  emu = await ApiEmulator.start();
  kubeconfig = await emu.kubeconfigFile();
});

afterAll(async () => {
  await emu?.close();
});

/** The pods of the election in the API, with the uids the sidecars are given (uid-<pod>). */
function putPods(election: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const name = `${election}-${i}`;
    emu.putPod({
      metadata: { name, namespace, uid: `uid-${name}`, labels: { 'zkleader.io/election': election, 'zkleader.io/role': 'follower' } },
      spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] },
    });
  }
}

let started: SidecarProcess[] = [];

afterEach(async () => {
  await Promise.all(started.map((s) => s.close()));
  started = [];
});

/** One at a time, so the join order is the election order; labelling (and deleting) through the emulator. */
async function startStandbys(election: string, count: number): Promise<SidecarProcess[]> {
  putPods(election, count);
  const group: SidecarProcess[] = [];
  for (let i = 0; i < count; i++) {
    const s = await SidecarProcess.start({ zookeeper: fixture.ensemble().connectString, election, podName: `${election}-${i}`, namespace, kubeconfig, extraArgs: ['--start', 'leader'] });
    started.push(s);
    group.push(s);
  }
  return group;
}

/** Polls until `check` holds. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function startz(s: SidecarProcess): Promise<number> {
  return (await s.http('/startz')).status;
}

describe('--start leader', () => {
  it('answers /startz 200 on the leader alone, 503 with the reason on the standbys; the leader killed, the next one starts', async () => {
    const group = await startStandbys('gate', 3);
    const first = await waitForAgreement(group, 15_000);
    await until(async () => (await startz(first.leader)) === 200, 5000, '/startz 200 on the leader');
    expect((await first.leader.http('/startz')).body).toBe(`started: this member leads (epoch ${first.epoch})\n`);
    const standbys = group.filter((s) => s !== first.leader);
    for (const s of standbys) {
      const r = await s.http('/startz');
      expect([r.status, r.body]).toEqual([503, `standby: the app starts once this member leads (the leader is ${first.leader.podName})\n`]);
      // Readiness keeps its meaning: the outcome is on disk.
      expect((await s.http('/readyz')).status).toBe(200);
      expect(existsSync(join(s.dir, '.zkleader-app-started'))).toBe(false);
    }
    expect(existsSync(join(first.leader.dir, '.zkleader-app-started'))).toBe(true);

    // A node lost with the leader: no sidecar is left to delete that pod; the next member starts.
    await first.leader.kill();
    const rest = standbys;
    const second = await waitForAgreement(rest, 15_000);
    expect(BigInt(second.epoch)).toBeGreaterThan(BigInt(first.epoch));
    await until(async () => (await startz(second.leader)) === 200, 5000, '/startz 200 on the next leader');
    const still = rest.find((s) => s !== second.leader) as SidecarProcess;
    expect(await startz(still)).toBe(503);
    // Standbys moving up in line are not losses: every pod is still there.
    for (const s of rest) expect(emu.getPod(namespace, s.podName)).toBeDefined();
    expect(second.leader.logs).not.toContain('leadership lost after the app started');
  }, 60_000);

  it('a started leader whose session is lost (paused past the timeout) says unknown, then deletes its own pod with its uid as precondition, and never leads again', async () => {
    const group = await startStandbys('lost', 2);
    const first = await waitForAgreement(group, 15_000);
    const leader = first.leader;
    await until(async () => (await startz(leader)) === 200, 5000, '/startz 200 on the leader');
    const other = group.find((s) => s !== leader) as SidecarProcess;

    leader.signal('SIGSTOP');
    const successor = await other.waitFor((d) => d.isLeader, 20_000, 'leadership after the session expired');
    expect(BigInt(successor.epoch ?? '0')).toBeGreaterThan(BigInt(first.epoch));
    leader.signal('SIGCONT');

    await until(() => emu.getPod(namespace, leader.podName) === undefined, 15_000, 'the own pod deleted');
    await until(() => leader.logs.includes('own pod deleted'), 5000, 'the deletion logged');
    expect(leader.logs).toContain('leadership lost after the app started');
    const doc = leader.document();
    expect(doc?.isLeader).toBe(false);
    // The Event says why.
    const lostEvents = emu.events(namespace).filter((e) => e.reason === 'LeadershipLostAfterStart');
    expect(lostEvents.map((e) => [e.type, e.involvedObject.name, e.involvedObject.uid])).toEqual([['Warning', leader.podName, `uid-${leader.podName}`]]);
    expect(lostEvents[0]?.message).toMatch(/^lost-\d lost the leadership of test\/lost after its app started \(.+\); deleting the pod so that its controller replaces it with a new standby$/);
    // It stays out of leadership: the files never claim it again while the pod goes.
    await sleep(1000);
    expect(leader.document()?.isLeader).toBe(false);
    expect(leader.alive).toBe(true);
  }, 60_000);

  it('does not delete a replacement of the same name: the uid precondition answers 409 and the sidecar lets it be', async () => {
    const group = await startStandbys('same-name', 2);
    const first = await waitForAgreement(group, 15_000);
    const leader = first.leader;
    await until(async () => (await startz(leader)) === 200, 5000, '/startz 200 on the leader');
    // A StatefulSet-like replacement: the pod object now has another uid under the same name.
    await emu.kubeConfig().makeApiClient(CoreV1Api).deleteNamespacedPod({ name: leader.podName, namespace });
    emu.putPod({
      metadata: { name: leader.podName, namespace, uid: 'uid-replacement', labels: { 'zkleader.io/election': 'same-name', 'zkleader.io/role': 'follower' } },
      spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] },
    });
    leader.signal('SIGSTOP');
    const other = group.find((s) => s !== leader) as SidecarProcess;
    await other.waitFor((d) => d.isLeader, 20_000, 'leadership after the session expired');
    leader.signal('SIGCONT');
    await until(() => leader.logs.includes('a pod of the same name with another uid stands there'), 15_000, 'the 409 seen');
    expect(emu.getPod(namespace, leader.podName)?.metadata?.uid).toBe('uid-replacement');
  }, 60_000);

  it('is refused without an election, without API access and without the pod uid (exit 2, naming --start)', async () => {
    const run = (args: string[]) =>
      promisify(execFile)(zkleaderBin, ['sidecar', '--zookeeper', '127.0.0.1:1', '--namespace', 'test', '--pod-name', 'p', '--start', 'leader', '--listen', '127.0.0.1:0', ...args], { env: { PATH: process.env.PATH ?? '' } }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );
    expect(await run(['--configs', 'app', '--pod-uid', 'u'])).toEqual({ code: 2, stderr: expect.stringContaining('--start leader needs --election') });
    expect(await run(['--election', 'e', '--no-label', '--pod-uid', 'u'])).toEqual({ code: 2, stderr: expect.stringContaining('--start leader needs API access') });
    expect(await run(['--election', 'e', '--kubeconfig', kubeconfig])).toEqual({ code: 2, stderr: expect.stringContaining('--start leader needs --pod-uid') });
  }, 30_000);
});
