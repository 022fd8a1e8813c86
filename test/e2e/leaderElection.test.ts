import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException, type V1Pod } from '@kubernetes/client-node';
import { ElectionObserver } from '../support/electionObserver.js';
import { expectSafeHistory, LeaderHistoryRecorder, podsInEmulator } from '../support/leaderHistory.js';
import { findSidecar } from '../support/podRunner.js';
import { epochAnnotation, exampleWorkloadPod, LocalCluster, roleLabel, type Leadership, type RunningWorkloadPod } from '../support/localCluster.js';

/**
 * Issue 6's flow with every real part on one machine: 3-node ZooKeeper, the API
 * emulator calling the real `zkleader webhook` through deploy/'s webhook
 * configuration, and the example workload's pods run by the pod runner.
 * The tests run in order and share one cluster.
 */
let cluster: LocalCluster;
const { namespace, pod: template } = exampleWorkloadPod('4s');

beforeAll(async () => {
  cluster = await LocalCluster.start();
}, 60_000);

afterAll(async () => {
  await cluster?.close();
}, 30_000);

async function refusal(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    return { code: err.code, message: (JSON.parse(err.body as string) as { message: string }).message };
  }
  throw new Error('expected the API to refuse the pod');
}

function plainPod(name: string, labels: Record<string, string>, annotations: Record<string, string> = {}): V1Pod {
  return { metadata: { name, labels: { app: 'plain', ...labels }, annotations }, spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] } };
}

describe('an annotated workload of three pods', () => {
  const election = template.metadata?.annotations?.['zkleader.io/election'] ?? '';
  let first: Leadership;
  let second: Leadership;
  /** Every pod started, kept after it is deleted or crashes: what its files said still counts. */
  const started: RunningWorkloadPod[] = [];
  let recorder: LeaderHistoryRecorder;
  let observer: ElectionObserver;

  // The whole run of this workload is recorded: every pod's leader.json, the role labels and
  // epoch annotations in the API, and the candidate nodes in ZooKeeper.
  // Waits are guarded: two pods labelled leader (or two valid leader files) fail the test at
  // once rather than after a timeout.
  beforeAll(async () => {
    recorder = await LeaderHistoryRecorder.start({
      members: () => started.map((p) => ({ member: p.name, dir: p.process.volumeDir })),
      // The emulator's store itself, read after every request it serves: a leader label that
      // lasts a single request (set before the stale one is demoted) is still caught.
      labels: podsInEmulator(cluster.emulator, namespace, election),
    });
    observer = await ElectionObserver.start({ connectString: cluster.zookeeper.connectString, electionPath: `/zkleader/${namespace}/${election}` });
  }, 30_000);

  afterAll(async () => {
    await Promise.all([recorder?.stop(), observer?.stop()]);
  });

  /** Every safety property over the history so far. */
  function expectSafeSoFar(): void {
    expectSafeHistory(recorder.history(), { czxidsByPod: observer.czxidsByPod() });
  }

  /** A pod of the workload as the test started it. */
  function startedPod(name: string): RunningWorkloadPod {
    const pod = started.find((p) => p.name === name);
    if (!pod) throw new Error(`pod ${name} was not started by this test`);
    return pod;
  }

  it('gets the sidecar at admission, and exactly one pod leads once the election converges', async () => {
    expect(election).toBe('orders');
    for (let i = 0; i < 3; i++) {
      const stored = await cluster.createPod(namespace, template);
      expect(findSidecar(stored)?.restartPolicy).toBe('Always');
      expect(stored.metadata?.labels?.[roleLabel]).toBe('follower');
      started.push(await cluster.start(stored));
    }
    first = await recorder.guard(cluster.waitForLeadership(namespace));
    const leaders = await cluster.labelledLeaders(namespace);
    expect(leaders.map((p) => p.metadata?.name)).toEqual([first.leader]);
    const all = (await cluster.core.listNamespacedPod({ namespace })).items;
    expect(all.map((p) => p.metadata?.labels?.[roleLabel]).sort()).toEqual(['follower', 'follower', 'leader']);
    for (const [name, file] of await cluster.leaderFiles()) {
      expect(file).toMatchObject({ election: `${namespace}/orders`, leader: { pod: first.leader }, epoch: first.epoch, isLeader: name === first.leader, state: name === first.leader ? 'leader' : 'follower' });
    }
    expectSafeSoFar();
    // The recorder saw the outcome the test asserts: the leader label with its epoch.
    expect(recorder.history().labels).toContainEqual(expect.objectContaining({ pod: first.leader, role: 'leader', epoch: first.epoch }));
  }, 45_000);

  it('fails over to another pod with a higher epoch when the leader pod is deleted', async () => {
    // The kubelet stops the pod's containers before the pod (and its emptyDir) goes: the
    // sidecar's last word, follower, is recorded before deletePod removes the volume.
    await recorder.guard(startedPod(first.leader).process.stop(5000));
    recorder.sample();
    await recorder.guard(cluster.deletePod(namespace, first.leader));
    const next = await recorder.guard(cluster.waitForLeadership(namespace, { notBefore: first.epoch }));
    expect(next.leader).not.toBe(first.leader);
    expect(BigInt(next.epoch)).toBeGreaterThan(BigInt(first.epoch));
    const leader = (await cluster.labelledLeaders(namespace))[0];
    expect(leader?.metadata?.annotations?.[epochAnnotation]).toBe(next.epoch);
    expect(cluster.emulator.getPod(namespace, first.leader)).toBeUndefined();
    second = next;
    expectSafeSoFar();
  }, 30_000);

  it('fails over after the session timeout when the leader crashes, and demotes its stale label', async () => {
    // SIGKILL first, then a sample: the crashed leader's last lease is on record before its volume goes.
    await startedPod(second.leader).process.kill();
    recorder.sample();
    await cluster.crashPod(second.leader);
    const third = await recorder.guard(cluster.waitForLeadership(namespace, { notBefore: second.epoch, timeoutMs: 20_000 }));
    expect(third.leader).not.toBe(second.leader);
    expect(BigInt(third.epoch)).toBeGreaterThan(BigInt(second.epoch));
    // waitForLeadership saw exactly one leader label: the crashed pod's was turned to follower by the new leader.
    expect(cluster.emulator.getPod(namespace, second.leader)?.metadata?.labels?.[roleLabel]).toBe('follower');
    // Over the whole run: never two leader labels in one list, never two valid leader files, each
    // lease over before the next leadership's since, epochs that are czxids and only grow.
    expectSafeSoFar();
    const labelledLeaders = recorder.history().labels.filter((o) => o.role === 'leader').map((o) => o.pod);
    expect(labelledLeaders).toEqual([first.leader, second.leader, third.leader]);
  }, 30_000);
});

describe('admission of other pods', () => {
  it('leaves a pod without the annotation alone: matchConditions keep it from even reaching the webhook', async () => {
    const admissions = async () => {
      const text = await (await fetch(`http://127.0.0.1:${cluster.webhook.metricsPort}/metrics`)).text();
      return [...text.matchAll(/^zkleader_webhook_admissions_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const before = await admissions();
    const stored = await cluster.createPod(namespace, plainPod('no-opt-in', {}));
    expect(findSidecar(stored)).toBeUndefined();
    // Only the ServiceAccount admission plugin's token volume, nothing of zkleader's.
    expect((stored.spec?.volumes ?? []).map((v) => v.name)).toEqual([expect.stringMatching(/^kube-api-access-[a-z0-9]{5}$/)]);
    expect(stored.metadata?.annotations?.['zkleader.io/status']).toBeUndefined();
    expect(await admissions()).toBe(before);
    // An annotated pod does reach it (the counter is live).
    await cluster.createPod(namespace, plainPod('opted-in', {}, { 'zkleader.io/inject': 'true' }));
    expect(await admissions()).toBeGreaterThan(before);
  });

  it('gives a labelling sidecar its own token when the ServiceAccount turns automount off, and a non-labelling sidecar no token at all', async () => {
    const tokenPath = '/var/run/secrets/kubernetes.io/serviceaccount';
    const mountedAtTokenPath = (pod: V1Pod, container: string) =>
      [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === container)?.volumeMounts?.find((m) => m.mountPath === tokenPath)?.name;
    cluster.emulator.putServiceAccount({ metadata: { name: 'hardened', namespace }, automountServiceAccountToken: false });
    const hardened = plainPod('hardened-sa', {}, { 'zkleader.io/inject': 'true' });
    const stored = await cluster.createPod(namespace, { ...hardened, spec: { ...hardened.spec, serviceAccountName: 'hardened', containers: hardened.spec?.containers ?? [] } });
    expect([mountedAtTokenPath(stored, 'zkleader'), mountedAtTokenPath(stored, 'app')]).toEqual(['zkleader-token', undefined]);
    expect(stored.spec?.volumes?.find((v) => v.name === 'zkleader-token')?.projected?.sources?.[0]?.serviceAccountToken?.path).toBe('token');
    // The ServiceAccount admission plugin runs again after the webhook: the empty directory keeps the pod's token out of the sidecar.
    const unlabelled = await cluster.createPod(namespace, plainPod('no-label', {}, { 'zkleader.io/inject': 'true', 'zkleader.io/label': 'false' }));
    expect(mountedAtTokenPath(unlabelled, 'zkleader')).toBe('zkleader-token');
    expect(unlabelled.spec?.volumes?.find((v) => v.name === 'zkleader-token')?.emptyDir).toBeDefined();
    expect(mountedAtTokenPath(unlabelled, 'app')).toMatch(/^kube-api-access-[a-z0-9]{5}$/);
  });

  it('refuses a pod with a bad annotation with the webhook\'s message', async () => {
    const r = await refusal(cluster.createPod(namespace, plainPod('bad', { 'zkleader.io/inject': 'true' }, { 'zkleader.io/session-timeout': 'soon' })));
    expect(r.code).toBe(400);
    expect(r.message).toMatch(/^admission webhook "inject\.zkleader\.io" denied the request: zkleader: .*zkleader\.io\/session-timeout/);
    expect(cluster.emulator.getPod(namespace, 'bad')).toBeUndefined();
  });

  it('with the webhook down: refuses a label opt-in pod (Fail) and creates an annotation opt-in pod without the sidecar (Ignore)', async () => {
    await cluster.webhook.stop();
    const r = await refusal(cluster.createPod(namespace, plainPod('labelled', { 'zkleader.io/inject': 'true' })));
    expect(r.code).toBe(500);
    expect(r.message).toMatch(/^Internal error occurred: failed calling webhook "inject\.zkleader\.io": failed to call webhook: Post "https:\/\/zkleader-webhook\.zkleader-system\.svc:443\/mutate\?timeout=5s": dial tcp .*connection refused$/);
    const annotated = await cluster.createPod(namespace, plainPod('annotated', {}, { 'zkleader.io/inject': 'true', 'zkleader.io/election': 'plain' }));
    expect(findSidecar(annotated)).toBeUndefined();
    expect(annotated.metadata?.labels?.[roleLabel]).toBeUndefined();
  });
});
