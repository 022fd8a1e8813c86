import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { pino } from 'pino';
import { KubernetesClient, kubeconfigConnection, type ApiConnection, type PodApi } from '../../sidecar/kubernetesClient.js';
import { PodLabeler, epochAnnotation, roleLabel } from '../../sidecar/podLabeler.js';
import { ApiEmulator } from '../support/apiEmulator/index.js';

// The labeler against the API emulator, through the real client-node and through the
// sidecar's own client (kubernetesClient.ts, what the sidecar runs with), with short request
// timeouts so that a hung API can be shown without waiting for the production 5 s.

let api: ApiEmulator;
const mergeHeaders = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
let core: CoreV1Api;
/** The client the labelers under test use. */
let labelerApi: PodApi;
let n = 0;
const labelers: PodLabeler[] = [];

beforeAll(async () => {
  api = await ApiEmulator.start();
  core = api.kubeConfig().makeApiClient(CoreV1Api);
});

afterAll(async () => {
  for (const l of labelers) l.stop();
  await api?.close();
});

beforeEach(() => api.clearFaults());

function pod(name: string, labels: Record<string, string> = {}): void {
  api.putPod({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'test', labels: { 'zkleader.io/election': 'orders', ...labels } },
    spec: { containers: [{ name: 'app', image: 'busybox' }] },
  });
}

function labeler(name: string, errors: string[]): PodLabeler {
  const created = new PodLabeler({
    api: labelerApi,
    namespace: 'test',
    pod: name,
    election: 'orders',
    logger: pino({ level: 'silent' }),
    onError: (status) => errors.push(status),
    requestTimeoutMs: 300,
    random: () => 0,
  });
  labelers.push(created);
  return created;
}

describe.each([
  ['client-node', 'client-node'],
  ['the sidecar client', 'sidecar'],
] as const)('with %s', (_, client) => {
  beforeAll(async () => {
    labelerApi = client === 'client-node' ? core : new KubernetesClient((await kubeconfigConnection(await api.kubeconfigFile())) as ApiConnection);
  });
  afterAll(() => {
    if (labelerApi instanceof KubernetesClient) labelerApi.close();
  });

  describe('PodLabeler', () => {
    it('retries 429 answers until the label and the epoch annotation are on the pod', async () => {
      const name = `p-${n++}`;
      pod(name);
      const errors: string[] = [];
      api.addFault({ verb: 'patch', resource: 'pods', status: 429, times: 2 });
      const l = labeler(name, errors);
      l.desire('leader', '4294967301');
      expect(await l.settled(10_000)).toBe(true);
      expect(errors).toEqual(['429', '429']);
      expect(api.getPod('test', name)?.metadata?.labels?.[roleLabel]).toBe('leader');
      expect(api.getPod('test', name)?.metadata?.annotations?.[epochAnnotation]).toBe('4294967301');
      expect(l.problem).toBeNull();
    });

    it('gives up on a request the API does not answer in time, and retries it', async () => {
      const name = `p-${n++}`;
      pod(name);
      const errors: string[] = [];
      api.addFault({ verb: 'patch', resource: 'pods', status: 500, times: 1, delayMs: 2000 });
      const l = labeler(name, errors);
      const started = Date.now();
      l.desire('leader', '7');
      expect(await l.settled(10_000)).toBe(true);
      expect(errors).toEqual(['timeout']);
      // Settled by the retry, long before the hung request would have answered.
      expect(Date.now() - started).toBeLessThan(2000);
      expect(api.getPod('test', name)?.metadata?.labels?.[roleLabel]).toBe('leader');
    });

    it('applies only the newest wish, and removes the epoch annotation on stepping down', async () => {
      const name = `p-${n++}`;
      pod(name);
      const errors: string[] = [];
      const l = labeler(name, errors);
      l.desire('leader', '9');
      expect(await l.settled(10_000)).toBe(true);
      api.addFault({ verb: 'patch', resource: 'pods', status: 503, times: 1 });
      l.desire('leader', '10');
      l.desire('follower', null);
      expect(await l.settled(10_000)).toBe(true);
      const stored = api.getPod('test', name);
      expect(stored?.metadata?.labels?.[roleLabel]).toBe('follower');
      expect(stored?.metadata?.annotations?.[epochAnnotation]).toBeUndefined();
      expect(errors).toEqual(['503']);
    });

    it('names the missing permission on a 403, retries with a growing backoff, and stops when told', async () => {
      const name = `p-${n++}`;
      pod(name);
      const errors: string[] = [];
      api.addFault({ verb: 'patch', resource: 'pods', status: 403 });
      const l = labeler(name, errors);
      l.desire('leader', '11');
      expect(await l.settled(1000)).toBe(false);
      expect(l.problem).toContain('forbidden (403): the service account needs get, list and patch on pods and create on events');
      // Backoff doubles from 100 ms (random 0) towards 30 s for errors that do not heal by themselves.
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors.length).toBeLessThanOrEqual(5);
      expect(new Set(errors)).toEqual(new Set(['403']));
      // stop() ends the retries: nothing more is sent.
      l.stop();
      const sent = errors.length;
      await new Promise((r) => setTimeout(r, 1500));
      expect(errors).toHaveLength(sent);
    });

    it('demotes another pod of its election still labelled leader, not pods of other elections', async () => {
      const name = `p-${n++}`;
      pod(name);
      pod('stale-leader', { [roleLabel]: 'leader' });
      api.putPod({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'other-election', namespace: 'test', labels: { 'zkleader.io/election': 'billing', [roleLabel]: 'leader' } },
        spec: { containers: [{ name: 'app', image: 'busybox' }] },
      });
      const l = labeler(name, []);
      l.desire('leader', '12');
      expect(await l.settled(10_000)).toBe(true);
      expect(api.getPod('test', 'stale-leader')?.metadata?.labels?.[roleLabel]).toBe('follower');
      expect(api.getPod('test', 'other-election')?.metadata?.labels?.[roleLabel]).toBe('leader');
    });

    it('on stop, when the retries did not get through, makes one last patch after the one in flight', async () => {
      const name = `p-${n++}`;
      pod(name, { [roleLabel]: 'leader' });
      const errors: string[] = [];
      const l = labeler(name, errors);
      // The API fails the first patch; the retry backs off (100 ms), and the stop comes first.
      api.addFault({ verb: 'patch', resource: 'pods', status: 503, times: 1 });
      l.desire('follower', null);
      expect(await l.settled(50)).toBe(false);
      expect(errors).toEqual(['503']);
      l.stop();
      expect(await l.finalPatch(1000)).toBe(true);
      expect(api.getPod('test', name)?.metadata?.labels?.[roleLabel]).toBe('follower');
      // Nothing was left to do for a labeler that had settled.
      expect(await l.finalPatch(1000)).toBe(true);
    });

    it('demotes a stale leader label before it labels its own pod leader: never two at once', async () => {
      const name = `p-${n++}`;
      pod(name);
      pod(`stale-${name}`, { [roleLabel]: 'leader' });
      const l = labeler(name, []);
      l.desire('leader', '13');
      expect(await l.settled(10_000)).toBe(true);
      const patches = api.requests.filter((r) => r.method === 'PATCH' && r.path.includes(`/pods/`) && r.path.includes(name));
      const order = patches.map((r) => (r.path.endsWith(`/pods/${name}`) ? 'self' : 'stale'));
      expect(order).toEqual(['stale', 'self']);
    });
  });

  describe('PodLabeler.reconcile: labels another pod changed are put right', () => {
    const patch = (name: string, role: string, epoch: string | null) =>
      core.patchNamespacedPod({ name, namespace: 'test', body: { metadata: { labels: { [roleLabel]: role }, annotations: { [epochAnnotation]: epoch } } } }, mergeHeaders);

    it('the leader, demoted by another pod that labelled itself leader: labels itself again and demotes the other', async () => {
      const [leader, rival] = [`p-${n++}`, `p-${n++}`];
      pod(leader);
      pod(rival, { [roleLabel]: 'follower' });
      const l = labeler(leader, []);
      l.desire('leader', '4294967301');
      expect(await l.settled(10_000)).toBe(true);
      expect(await l.reconcile()).toBe(false);
      await patch(leader, 'follower', null);
      await patch(rival, 'leader', '4294967399');
      expect(await l.reconcile()).toBe(true);
      expect(await l.settled(10_000)).toBe(true);
      expect([api.getPod('test', leader)?.metadata?.labels?.[roleLabel], api.getPod('test', leader)?.metadata?.annotations?.[epochAnnotation]]).toEqual(['leader', '4294967301']);
      expect(api.getPod('test', rival)?.metadata?.labels?.[roleLabel]).toBe('follower');
      expect(api.getPod('test', rival)?.metadata?.annotations?.[epochAnnotation]).toBeUndefined();
    });

    it('a follower whose pod was labelled leader by someone else: back to follower', async () => {
      const name = `p-${n++}`;
      pod(name);
      const l = labeler(name, []);
      l.desire('follower', null);
      expect(await l.settled(10_000)).toBe(true);
      await patch(name, 'leader', '1');
      expect(await l.reconcile()).toBe(true);
      expect(await l.settled(10_000)).toBe(true);
      expect(api.getPod('test', name)?.metadata?.labels?.[roleLabel]).toBe('follower');
      expect(api.getPod('test', name)?.metadata?.annotations?.[epochAnnotation]).toBeUndefined();
    });
  });

  describe('PodLabeler: a follower whose leader is in another cluster (one election across clusters)', () => {
    const put = (name: string, role: string, epoch?: string) =>
      api.putPod({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'test', labels: { 'zkleader.io/election': 'payments', [roleLabel]: role }, annotations: epoch === undefined ? {} : { [epochAnnotation]: epoch } },
        spec: { containers: [{ name: 'app', image: 'busybox' }] },
      });
    const roleOf = (name: string) => api.getPod('test', name)?.metadata?.labels?.[roleLabel];

    it('demotes the pods of its own cluster labelled leader below the leader\'s epoch, whatever their names, and leaves a newer one', async () => {
      put('pay-self', 'follower');
      // A crashed sidecar's leftover, and one named like the leader in the other cluster: both stale.
      put('pay-crashed', 'leader', '100');
      put('pay-remote-leader', 'leader', '150');
      put('pay-unannotated', 'leader');
      // Leads after the leadership this member knows of (its view is the older one): left alone.
      put('pay-newer', 'leader', '300');
      const l = new PodLabeler({ api: labelerApi, namespace: 'test', pod: 'pay-self', election: 'payments', logger: pino({ level: 'silent' }), requestTimeoutMs: 1000, random: () => 0 });
      labelers.push(l);
      l.desire('follower', '200', '200');
      expect(await l.settled(10_000)).toBe(true);
      expect(['pay-crashed', 'pay-remote-leader', 'pay-unannotated', 'pay-newer', 'pay-self'].map(roleOf)).toEqual(['follower', 'follower', 'follower', 'leader', 'follower']);
      expect(api.getPod('test', 'pay-crashed')?.metadata?.annotations?.[epochAnnotation]).toBeUndefined();

      // A stale label put back later is found by the label check and demoted again.
      put('pay-crashed', 'leader', '100');
      expect(await l.reconcile()).toBe(true);
      expect(await l.settled(10_000)).toBe(true);
      expect([roleOf('pay-crashed'), roleOf('pay-newer')]).toEqual(['follower', 'leader']);

      // A follower of a leader in its own cluster demotes nobody: that leader does.
      put('pay-other', 'leader', '120');
      l.desire('follower', '250', null);
      expect(await l.settled(10_000)).toBe(true);
      expect(await l.reconcile()).toBe(false);
      expect(roleOf('pay-other')).toBe('leader');
    });
  });
});
