import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiEmulator } from '../support/apiEmulator/index.js';
import { SidecarProcess, waitForAgreement } from '../support/sidecarProcess.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// Labels, annotations and Events through the real @kubernetes/client-node against the API
// emulator. A 1-node ensemble: these tests are about the API side, not ZooKeeper faults.
const namespace = 'shop';
let ensemble: ZooKeeperEnsemble;
let api: ApiEmulator;
let kubeconfig: string;
let sidecars: SidecarProcess[] = [];

beforeAll(async () => {
  [ensemble, api] = await Promise.all([ZooKeeperEnsemble.start({ size: 1 }), ApiEmulator.start()]);
  kubeconfig = await api.kubeconfigFile();
  api.putNamespace({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
}, 60_000);

afterAll(async () => {
  await Promise.all([ensemble?.close(), api?.close()]);
});

beforeEach(() => api.clearFaults());

afterEach(async () => {
  await Promise.all(sidecars.map((s) => s.close()));
  sidecars = [];
});

function putPod(name: string, election: string, role: 'leader' | 'follower'): void {
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: election, 'zkleader.io/election': election, 'zkleader.io/role': role } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
  api.putPod(pod);
}

async function startMembers(election: string, count: number): Promise<SidecarProcess[]> {
  const group: SidecarProcess[] = [];
  for (let i = 0; i < count; i++) {
    const podName = `${election}-${i}`;
    putPod(podName, election, 'follower');
    const s = await SidecarProcess.start({ zookeeper: ensemble.connectString, election, podName, namespace, kubeconfig });
    sidecars.push(s);
    group.push(s);
  }
  return group;
}

function role(pod: string): string | undefined {
  return api.getPod(namespace, pod)?.metadata?.labels?.['zkleader.io/role'];
}

function epochAnnotation(pod: string): string | undefined {
  return api.getPod(namespace, pod)?.metadata?.annotations?.['zkleader.io/leader-epoch'];
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms`);
    await sleep(25);
  }
}

describe('sidecar labels and events', () => {
  it('labels the leader (with the epoch) and the followers, demotes a stale leader label, records Events, hands the label over on SIGTERM', async () => {
    // A crashed sidecar's pod that still says leader.
    putPod('orders-stale', 'orders', 'leader');
    const group = await startMembers('orders', 3);
    const { leader, epoch } = await waitForAgreement(group, 15_000);
    await until(() => role(leader.podName) === 'leader' && group.every((s) => s === leader || role(s.podName) === 'follower'), 10_000, 'labels');
    expect(epochAnnotation(leader.podName)).toBe(epoch);
    await until(() => role('orders-stale') === 'follower', 10_000, 'stale leader label demoted');
    expect(api.events(namespace).some((e) => e.reason === 'LeaderElected' && e.involvedObject.name === leader.podName)).toBe(true);

    expect(await leader.stop()).toEqual({ code: 0, signal: null });
    // The graceful stop labels follower before it exits.
    expect(role(leader.podName)).toBe('follower');
    expect(epochAnnotation(leader.podName)).toBeUndefined();
    const rest = group.filter((s) => s !== leader);
    const next = await waitForAgreement(rest, 10_000);
    await until(() => role(next.leader.podName) === 'leader', 10_000, 'new leader labelled');
    expect(epochAnnotation(next.leader.podName)).toBe(next.epoch);
  }, 60_000);

  it('retries label patches answered 409 and 500', async () => {
    api.addFault({ verb: 'patch', resource: 'pods', status: 409, times: 2 });
    api.addFault({ verb: 'patch', resource: 'pods', status: 500, times: 2 });
    const group = await startMembers('retry', 2);
    const { leader } = await waitForAgreement(group, 15_000);
    await until(() => role(leader.podName) === 'leader' && group.every((s) => s === leader || role(s.podName) === 'follower'), 15_000, 'labels after retries');
    const patches = api.requests.filter((r) => r.method === 'PATCH' && r.path.includes('/pods/retry-'));
    expect(patches.filter((r) => r.status === 409)).toHaveLength(2);
    expect(patches.filter((r) => r.status === 500)).toHaveLength(2);
    const metrics = await leader.http('/metrics');
    const other = group.find((s) => s !== leader) as SidecarProcess;
    const errors = [metrics.body, (await other.http('/metrics')).body].join('\n');
    expect(errors).toMatch(/zkleader_label_patch_errors_total\{status="(409|500)"\} [1-9]/);
  }, 60_000);

  it('403: the files stay right, /readyz stays 200 and names the problem, the metric counts it', async () => {
    api.addFault({ verb: 'patch', resource: 'pods', status: 403 });
    const [only] = await startMembers('denied', 1);
    if (!only) throw new Error('no sidecar');
    await only.waitFor((d) => d.isLeader && d.state === 'leader', 15_000, 'leadership');
    expect(only.leaderFile()).toBe('denied-0\n');
    await until(() => api.requests.some((r) => r.method === 'PATCH' && r.status === 403), 10_000, 'a forbidden patch');
    await sleep(200);
    const readyz = await only.http('/readyz');
    expect(readyz.status).toBe(200);
    expect(readyz.body).toMatch(/forbidden \(403\)/);
    expect((await only.http('/metrics')).body).toMatch(/zkleader_label_patch_errors_total\{status="403"\} [1-9]/);
    expect(role('denied-0')).toBe('follower');
    // DESIGN.md: one clear error, however often the labeler retries.
    await until(() => api.requests.filter((r) => r.method === 'PATCH' && r.status === 403).length >= 3, 10_000, 'three forbidden patches');
    const errorLines = only.logs.split('\n').filter((line) => line.includes('"level":50') && line.includes('forbidden (403)'));
    expect(errorLines).toHaveLength(1);
    // The labeler keeps retrying the forbidden patch; a graceful stop must not wait for it
    // (the kubelet would SIGKILL after the grace period). Bound generously: the label wait is 1 s.
    const stopping = Date.now();
    only.signal('SIGTERM');
    expect(await only.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - stopping).toBeLessThan(8000);
  }, 60_000);
});
