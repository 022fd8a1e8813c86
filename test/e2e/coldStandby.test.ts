import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { findSidecar } from '../support/podRunner.js';
import { exampleWorkloadPod, LocalCluster, type RunningWorkloadPod } from '../support/localCluster.js';

/**
 * Cold standby (zkleader.io/start: leader) through every real part on one machine: the
 * example workload's pod template with the annotation, admitted by the real webhook, run by
 * the pod runner, whose kubelet model starts a pod's app containers only once the native
 * sidecar's startupProbe (/startz) answers 200. A minimal ReplicaSet (below) replaces every
 * pod that leaves the API. The tests run in order and share one cluster.
 */
let cluster: LocalCluster;
const { namespace, pod: workload } = exampleWorkloadPod('4s');
const template: V1Pod = { ...workload, metadata: { ...workload.metadata, annotations: { ...workload.metadata?.annotations, 'zkleader.io/start': 'leader' } } };
const replicas = 2;

beforeAll(async () => {
  cluster = await LocalCluster.start();
}, 60_000);

afterAll(async () => {
  await cluster?.close();
}, 30_000);

/** The ReplicaSet's part: a new pod from the template for each one missing, started by the "kubelet". */
async function replaceMissing(): Promise<RunningWorkloadPod[]> {
  const added: RunningWorkloadPod[] = [];
  while (cluster.pods().length < replicas) {
    const stored = await cluster.createPod(namespace, template);
    added.push(await cluster.start(stored));
  }
  return added;
}

function started(): RunningWorkloadPod[] {
  return cluster.pods().filter((p) => p.process.apps.startedAt !== null);
}

async function until<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const state = cluster.pods().map((p) => `${p.name}: app ${p.process.apps.startedAt === null ? 'held back' : 'started'}`).join('; ');
      throw new Error(`${what}: not within ${timeoutMs} ms (${state})`);
    }
    await sleep(100);
  }
}

/** Exactly one running pod has started its app, and it is the labelled leader; its name. */
async function oneStartedLeader(timeoutMs = 20_000): Promise<string> {
  const { leader } = await cluster.waitForLeadership(namespace, { timeoutMs });
  await until(() => (started().length === 1 && started()[0]?.name === leader ? true : undefined), 5000, `only ${leader} started its app`);
  return leader;
}

describe('a cold-standby workload of two pods', () => {
  let first: string;
  let second: string;

  it('gets the gated sidecar at admission; only the leader starts its app, the standby waits', async () => {
    await replaceMissing();
    for (const pod of cluster.pods()) {
      const sidecar = findSidecar(cluster.emulator.getPod(namespace, pod.name) ?? {});
      expect(sidecar?.startupProbe?.httpGet?.path).toBe('/startz');
      expect(sidecar?.env).toContainEqual({ name: 'ZKLEADER_START', value: 'leader' });
    }
    first = await oneStartedLeader();
    // Long enough for many probes: the standby's app stays held back, and its probe never gives up.
    await sleep(3000);
    expect(started().map((p) => p.name)).toEqual([first]);
    for (const pod of cluster.pods()) expect(pod.process.apps.failed).toBeNull();
  }, 60_000);

  it('the leader pod deleted: the standby leads and starts its app; the replacement waits as the new standby', async () => {
    await cluster.deletePod(namespace, first);
    const [replacement] = await replaceMissing();
    second = await oneStartedLeader();
    expect(second).not.toBe(first);
    expect(second).not.toBe(replacement?.name);
    await sleep(2000);
    expect(replacement?.process.apps.startedAt).toBeNull();
  }, 60_000);

  it('a started leader cut off past its session (paused): the standby takes over, and the old leader deletes its own pod; its replacement waits', async () => {
    const paused = cluster.pods().find((p) => p.name === second) as RunningWorkloadPod;
    const standby = cluster.pods().find((p) => p.name !== second) as RunningWorkloadPod;
    const uid = cluster.emulator.getPod(namespace, second)?.metadata?.uid;
    paused.process.pause();
    // The standby leads after the session timeout (4 s) and starts its app.
    await until(() => standby.process.apps.startedAt ?? undefined, 20_000, `${standby.name} starting its app`);
    paused.process.resume();
    // The old leader finds its leadership gone and deletes its own pod (its uid as precondition).
    await until(() => (cluster.emulator.getPod(namespace, second) === undefined ? true : undefined), 20_000, `${second} deleting its own pod`);
    expect(paused.process.logs()).toContain('leadership lost after the app started');
    // The Event goes out before the delete (or gives up on an API that does not answer).
    const events = cluster.emulator.events(namespace).filter((e) => e.reason === 'LeadershipLostAfterStart');
    expect(events.map((e) => [e.involvedObject.name, e.involvedObject.uid])).toEqual([[second, uid]]);
    // The kubelet stops what the API deleted; the ReplicaSet replaces it with a new standby.
    expect(await cluster.reapDeleted(namespace)).toEqual([second]);
    const [replacement] = await replaceMissing();
    expect(await oneStartedLeader()).toBe(standby.name);
    await sleep(2000);
    expect(replacement?.process.apps.startedAt).toBeNull();
    expect(started().map((p) => p.name)).toEqual([standby.name]);
  }, 90_000);
});
