import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1ValidatingAdmissionPolicy,
  type V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { PodLabeler } from '../../sidecar/podLabeler.js';
import { defaultInjectorConfig } from '../../src/config.js';
import { inject } from '../../src/inject.js';
import { ApiEmulator, POD_NAME_EXTRA } from '../support/apiEmulator/index.js';
import { renderKustomization } from '../support/kustomize.js';
import { runPod, type RunningPod } from '../support/podRunner.js';
import { repoRoot } from '../support/repoRoot.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// The ValidatingAdmissionPolicy zkleader-election-pods as `kubectl apply -k deploy` installs
// it, enforced by the API emulator's policy plugin, against requests of the real
// @kubernetes/client-node carrying pod-bound service-account tokens: what the sidecar sends
// passes, what else an app container holding the same token could send is refused.

const role = 'zkleader.io/role';
const epoch = 'zkleader.io/leader-epoch';
const policyName = 'zkleader-election-pods';
const rendered = renderKustomization(join(repoRoot, 'deploy'));
const policy = rendered.find((o) => o.kind === 'ValidatingAdmissionPolicy' && o.metadata.name === policyName) as unknown as V1ValidatingAdmissionPolicy;
const binding = rendered.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding' && o.metadata.name === policyName) as unknown as V1ValidatingAdmissionPolicyBinding;
const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const strategicMergePatch = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

let emu: ApiEmulator;
let admin: CoreV1Api;

/** A pod of the election `orders` as the webhook admits it (labels and status record), in `namespace`. */
function electionPod(name: string, podRole: 'leader' | 'follower', namespace = 'shop'): V1Pod {
  return {
    metadata: {
      name,
      namespace,
      labels: { 'app.kubernetes.io/name': 'orders', 'zkleader.io/inject': 'true', 'zkleader.io/election': 'orders', [role]: podRole },
      annotations: { 'zkleader.io/status': '{"version":"0.1.0"}', ...(podRole === 'leader' ? { [epoch]: '4294967301' } : {}) },
    },
    spec: { serviceAccountName: 'orders', containers: [{ name: 'app', image: 'busybox:1.36' }] },
  };
}

/** A client that authenticates as the pod's service account with a token bound to the pod (what its containers hold). */
function asPod(name: string, namespace = 'shop'): CoreV1Api {
  return emu.kubeConfig(emu.serviceAccountToken(namespace, 'orders', { pod: name }), namespace).makeApiClient(CoreV1Api);
}

function patch(client: CoreV1Api, name: string, body: object, options = mergePatch, namespace = 'shop'): Promise<V1Pod> {
  return client.patchNamespacedPod({ name, namespace, body }, options);
}

async function refusal(promise: Promise<unknown>): Promise<{ code: number; reason: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const status = JSON.parse(err.body as string) as { reason: string; message: string };
    return { code: err.code, reason: status.reason, message: status.message };
  }
  throw new Error('expected the API to refuse the request');
}

/** What of a stored pod the policy guards, to compare before and after a refusal. */
function guarded(name: string, namespace = 'shop'): unknown {
  const p = emu.getPod(namespace, name);
  return { labels: p?.metadata?.labels, annotations: p?.metadata?.annotations, spec: p?.spec, finalizers: p?.metadata?.finalizers, ownerReferences: p?.metadata?.ownerReferences };
}

beforeAll(async () => {
  emu = await ApiEmulator.start();
  admin = emu.kubeConfig().makeApiClient(CoreV1Api);
  const admission = emu.kubeConfig().makeApiClient(AdmissionregistrationV1Api);
  await admission.createValidatingAdmissionPolicy({ body: policy });
  await admission.createValidatingAdmissionPolicyBinding({ body: binding });
  for (const namespace of ['shop', 'other']) emu.putServiceAccount({ metadata: { name: 'orders', namespace } });
});

afterAll(async () => {
  await emu?.close();
});

beforeEach(() => {
  // orders-0 is the requester's own pod; orders-1 a stale leader; orders-2 a follower.
  emu.putPod(electionPod('orders-0', 'follower'));
  emu.putPod(electionPod('orders-1', 'leader'));
  emu.putPod(electionPod('orders-2', 'follower'));
});

describe('the policy as deploy/ ships it', () => {
  it('binds to deny, fails closed, and applies to updates and deletions of pods themselves (not their subresources)', () => {
    expect(binding.spec).toEqual({ policyName, validationActions: ['Deny'] });
    expect(policy.spec?.failurePolicy).toBe('Fail');
    expect(policy.spec?.matchConstraints?.resourceRules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE', 'DELETE'], resources: ['pods'] }]);
    expect(policy.spec?.matchConditions?.map((c) => c.name)).toEqual(['pod-bound-service-account-token', 'pod-of-an-election']);
    // Every refusal names what was refused, and says Forbidden (403) as the certificates policy does.
    for (const v of policy.spec?.validations ?? []) expect([v.expression, v.reason, typeof v.message, typeof v.messageExpression]).toEqual([v.expression, 'Forbidden', 'string', 'string']);
  });
});

describe("the sidecar's own patches, with its pod's token", () => {
  const silent = pino({ level: 'silent' });

  it('the real PodLabeler labels its pod leader with the epoch, demoting the stale leader first', async () => {
    const labeler = new PodLabeler({ api: asPod('orders-0'), namespace: 'shop', pod: 'orders-0', election: 'orders', logger: silent });
    labeler.desire('leader', '4294967306');
    expect(await labeler.settled(5000)).toBe(true);
    expect(labeler.problem).toBeNull();
    expect(emu.getPod('shop', 'orders-0')?.metadata?.labels?.[role]).toBe('leader');
    expect(emu.getPod('shop', 'orders-0')?.metadata?.annotations?.[epoch]).toBe('4294967306');
    expect(emu.getPod('shop', 'orders-1')?.metadata?.labels?.[role]).toBe('follower');
    expect(emu.getPod('shop', 'orders-1')?.metadata?.annotations?.[epoch]).toBeUndefined();
    // And steps down.
    labeler.desire('follower', null);
    expect(await labeler.settled(5000)).toBe(true);
    expect(emu.getPod('shop', 'orders-0')?.metadata?.labels?.[role]).toBe('follower');
    expect(emu.getPod('shop', 'orders-0')?.metadata?.annotations?.[epoch]).toBeUndefined();
    labeler.stop();
  });

  it.each<[string, string, object]>([
    ['leader with the epoch, on its own pod', 'orders-0', { metadata: { labels: { [role]: 'leader' }, annotations: { [epoch]: '18446744073709551615' } } }],
    ['follower without the epoch, on its own pod', 'orders-0', { metadata: { labels: { [role]: 'follower' }, annotations: { [epoch]: null } } }],
    ['demotion of another pod: follower, the epoch removed', 'orders-1', { metadata: { labels: { [role]: 'follower' }, annotations: { [epoch]: null } } }],
    ['the same demotion of a pod that is a follower already (no change)', 'orders-2', { metadata: { labels: { [role]: 'follower' }, annotations: { [epoch]: null } } }],
  ])('passes: %s (the merge patches of sidecar/podLabeler.ts)', async (_what, target, body) => {
    const stored = await patch(asPod('orders-0'), target, body);
    expect(stored.metadata?.name).toBe(target);
  });
});

describe('with the same token, an app container', () => {
  const denied = (target: string) => `pods "${target}" is forbidden: ValidatingAdmissionPolicy '${policyName}' with binding '${policyName}' denied request: `;
  const demoteOnly = (target: string) =>
    `the service account token of pod orders-0 may set zkleader.io/role=leader and zkleader.io/leader-epoch only on its own pod; on pod ${target} it may only demote: zkleader.io/role=follower with zkleader.io/leader-epoch removed`;

  it.each<[string, string, (client: CoreV1Api) => Promise<unknown>, string | RegExp]>([
    ['promote another pod', 'orders-2', (c) => patch(c, 'orders-2', { metadata: { labels: { [role]: 'leader' } } }), demoteOnly('orders-2')],
    ['promote another pod with an epoch', 'orders-2', (c) => patch(c, 'orders-2', { metadata: { labels: { [role]: 'leader' }, annotations: { [epoch]: '9' } } }), demoteOnly('orders-2')],
    ['promote another pod by JSON patch', 'orders-2', (c) => patch(c, 'orders-2', [{ op: 'replace', path: '/metadata/labels/zkleader.io~1role', value: 'leader' }], jsonPatch), demoteOnly('orders-2')],
    ['promote another pod by strategic merge patch', 'orders-2', (c) => patch(c, 'orders-2', { metadata: { labels: { [role]: 'leader' } } }, strategicMergePatch), demoteOnly('orders-2')],
    ['set an epoch on another pod', 'orders-2', (c) => patch(c, 'orders-2', { metadata: { annotations: { [epoch]: '9' } } }), demoteOnly('orders-2')],
    ['change the epoch of the leader', 'orders-1', (c) => patch(c, 'orders-1', { metadata: { annotations: { [epoch]: '1' } } }), demoteOnly('orders-1')],
    ['demote another pod but leave its epoch', 'orders-1', (c) => patch(c, 'orders-1', { metadata: { labels: { [role]: 'follower' } } }), demoteOnly('orders-1')],
    ['take the role label off the leader', 'orders-1', (c) => patch(c, 'orders-1', { metadata: { labels: { [role]: null }, annotations: { [epoch]: null } } }), 'the label zkleader.io/role of pod orders-1 may not be removed'],
    ['set another role on its own pod', 'orders-0', (c) => patch(c, 'orders-0', { metadata: { labels: { [role]: 'boss' } } }), 'the label zkleader.io/role of pod orders-0 must be leader or follower, not "boss"'],
    ['set an epoch that is not a number on its own pod', 'orders-0', (c) => patch(c, 'orders-0', { metadata: { labels: { [role]: 'leader' }, annotations: { [epoch]: '1e9' } } }), 'the annotation zkleader.io/leader-epoch of pod orders-0 must be a decimal number (the leader node czxid), not "1e9"'],
    ['change another label of its own pod (a Service selector)', 'orders-0', (c) => patch(c, 'orders-0', { metadata: { labels: { 'app.kubernetes.io/name': 'payments' } } }), 'the service account token of pod orders-0 may change only the label zkleader.io/role of pod orders-0, not the labels app.kubernetes.io/name'],
    ['add labels to another pod', 'orders-2', (c) => patch(c, 'orders-2', { metadata: { labels: { tier: 'web', team: 'x' } } }), /may change only the label zkleader\.io\/role of pod orders-2, not the labels (team, tier|tier, team)$/],
    ['take its own pod out of the election', 'orders-0', (c) => patch(c, 'orders-0', { metadata: { labels: { 'zkleader.io/election': null, [role]: 'leader' } } }), 'not the labels zkleader.io/election'],
    ['change an annotation of its own pod', 'orders-0', (c) => patch(c, 'orders-0', { metadata: { annotations: { 'zkleader.io/status': '{}' } } }), 'may change only the annotation zkleader.io/leader-epoch of pod orders-0, not the annotations zkleader.io/status'],
    ['add an annotation to another pod', 'orders-2', (c) => patch(c, 'orders-2', { metadata: { annotations: { 'example.com/x': 'y' } } }), 'not the annotations example.com/x'],
    ['change the image of its own pod', 'orders-0', (c) => patch(c, 'orders-0', [{ op: 'replace', path: '/spec/containers/0/image', value: 'evil:1' }], jsonPatch), 'may not change the spec of pod orders-0'],
    ['change the spec of another pod', 'orders-2', (c) => patch(c, 'orders-2', { spec: { activeDeadlineSeconds: 1 } }), 'may not change the spec of pod orders-2'],
    ['set a finalizer on another pod', 'orders-2', (c) => patch(c, 'orders-2', { metadata: { finalizers: ['example.com/hold'] } }), 'may not change the owner references, finalizers or generateName of pod orders-2'],
    ['set an owner reference on its own pod', 'orders-0', (c) => patch(c, 'orders-0', { metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: '00000000-0000-0000-0000-000000000001' }] } }), 'may not change the owner references, finalizers or generateName of pod orders-0'],
    ['replace another pod (PUT) as a leader', 'orders-2', async (c) => {
      const current = await c.readNamespacedPod({ name: 'orders-2', namespace: 'shop' });
      return c.replaceNamespacedPod({ name: 'orders-2', namespace: 'shop', body: { ...current, metadata: { ...current.metadata, labels: { ...current.metadata?.labels, [role]: 'leader' } } } });
    }, demoteOnly('orders-2')],
  ])('cannot %s: 403 naming what was refused, nothing stored', async (_what, target, attempt, message) => {
    const before = guarded(target);
    const r = await refusal(attempt(asPod('orders-0')));
    expect([r.code, r.reason]).toEqual([403, 'Forbidden']);
    expect(r.message.startsWith(denied(target))).toBe(true);
    // (The order of several keys is the map's: random in kube-apiserver, whose maps are Go maps.)
    if (typeof message === 'string') expect(r.message).toContain(message);
    else expect(r.message).toMatch(message);
    expect(guarded(target)).toEqual(before);
  });

  it('is refused a dry run of the same', async () => {
    const r = await refusal(asPod('orders-0').patchNamespacedPod({ name: 'orders-2', namespace: 'shop', body: { metadata: { labels: { [role]: 'leader' } } }, dryRun: 'All' }, mergePatch));
    expect(r.code).toBe(403);
  });

  it('cannot make a pod outside any election a pod of one, labelled leader', async () => {
    emu.putPod({ metadata: { name: 'plain-0', namespace: 'shop', labels: { 'app.kubernetes.io/name': 'orders' } }, spec: { serviceAccountName: 'orders', containers: [{ name: 'app', image: 'busybox:1.36' }] } });
    const r = await refusal(patch(asPod('orders-0'), 'plain-0', { metadata: { labels: { 'zkleader.io/election': 'orders', [role]: 'leader' } } }));
    expect(r.message).toContain('not the labels zkleader.io/election');
    // Its other labels are RBAC's business: the policy is about pods of elections.
    expect((await patch(asPod('orders-0'), 'plain-0', { metadata: { labels: { tier: 'web' } } })).metadata?.labels?.tier).toBe('web');
  });

  it('with a token of a pod of the same name in another namespace, may not label this one leader', async () => {
    emu.putPod(electionPod('orders-0', 'follower', 'other'));
    const foreign = asPod('orders-0', 'other');
    const r = await refusal(patch(foreign, 'orders-0', { metadata: { labels: { [role]: 'leader' }, annotations: { [epoch]: '9' } } }));
    expect(r.message).toContain('on pod orders-0 it may only demote');
    // A token of an earlier pod of the same name (deleted, recreated with another uid) is no longer accepted at all.
    const token = emu.serviceAccountToken('shop', 'orders', { pod: 'orders-2' });
    await admin.deleteNamespacedPod({ name: 'orders-2', namespace: 'shop' });
    emu.putPod(electionPod('orders-2', 'follower'));
    expect(emu.userOf(token)).toBeUndefined();
  });
});

describe('deletion of pods (cold standby: a leader that lost leadership deletes its own pod)', () => {
  const deny = (target: string) =>
    `pods "${target}" is forbidden: ValidatingAdmissionPolicy '${policyName}' with binding '${policyName}' denied request: the service account token of pod orders-0 may delete only its own pod (name and uid), not pod ${target}`;

  it('the real PodDeleter deletes its own pod with its token, the uid as precondition', async () => {
    const { PodDeleter } = await import('../../sidecar/podDeleter.js');
    const uid = emu.getPod('shop', 'orders-0')?.metadata?.uid ?? '';
    const deleter = new PodDeleter({ api: asPod('orders-0'), namespace: 'shop', pod: 'orders-0', uid, logger: pino({ level: 'silent' }) });
    expect(await deleter.delete()).toBe('deleted');
    expect(emu.getPod('shop', 'orders-0')).toBeUndefined();
  });

  it('its precondition leaves a pod of the same name with another uid alone (a StatefulSet replacement): 409, nothing deleted', async () => {
    const { PodDeleter } = await import('../../sidecar/podDeleter.js');
    const r = await refusal(asPod('orders-0').deleteNamespacedPod({ name: 'orders-0', namespace: 'shop', body: { preconditions: { uid: 'another-uid' } } }));
    expect([r.code, r.reason]).toEqual([409, 'Conflict']);
    expect(r.message).toBe(`Operation cannot be fulfilled on pods "orders-0": Precondition failed: UID in precondition: another-uid, UID in object meta: ${emu.getPod('shop', 'orders-0')?.metadata?.uid ?? ''}`);
    const deleter = new PodDeleter({ api: admin, namespace: 'shop', pod: 'orders-0', uid: 'another-uid', logger: pino({ level: 'silent' }) });
    expect(await deleter.delete()).toBe('replaced');
    expect(emu.getPod('shop', 'orders-0')).toBeDefined();
  });

  it.each([
    ['another pod of its election', 'orders-2'],
    ['the leader', 'orders-1'],
  ])('cannot delete %s: 403 naming what was refused, nothing deleted', async (_what, target) => {
    const r = await refusal(asPod('orders-0').deleteNamespacedPod({ name: target, namespace: 'shop' }));
    expect([r.code, r.reason, r.message]).toEqual([403, 'Forbidden', deny(target)]);
    expect(emu.getPod('shop', target)).toBeDefined();
  });

  it('with a token of a pod of the same name in another namespace, cannot delete this one', async () => {
    emu.putPod(electionPod('orders-0', 'follower', 'other'));
    const r = await refusal(asPod('orders-0', 'other').deleteNamespacedPod({ name: 'orders-0', namespace: 'shop' }));
    expect([r.code, r.message]).toEqual([403, deny('orders-0')]);
    expect(emu.getPod('shop', 'orders-0')).toBeDefined();
  });

  it('leaves pods outside any election to RBAC, and administrators alone', async () => {
    emu.putPod({ metadata: { name: 'plain-1', namespace: 'shop', labels: { app: 'plain' } }, spec: { serviceAccountName: 'orders', containers: [{ name: 'app', image: 'busybox:1.36' }] } });
    await asPod('orders-0').deleteNamespacedPod({ name: 'plain-1', namespace: 'shop' });
    expect(emu.getPod('shop', 'plain-1')).toBeUndefined();
    await admin.deleteNamespacedPod({ name: 'orders-2', namespace: 'shop' });
    expect(emu.getPod('shop', 'orders-2')).toBeUndefined();
  });
});

describe('who the policy leaves alone', () => {
  it('the administrator (no pod claims)', async () => {
    const stored = await patch(admin, 'orders-2', { metadata: { labels: { [role]: 'leader', tier: 'web' }, annotations: { [epoch]: '7' } } });
    expect(stored.metadata?.labels).toMatchObject({ [role]: 'leader', tier: 'web' });
  });

  it('a service-account token not bound to a pod (kubectl create token)', async () => {
    const unbound = emu.serviceAccountToken('shop', 'orders');
    expect(emu.userOf(unbound)?.extra?.[POD_NAME_EXTRA]).toBeUndefined();
    const stored = await patch(emu.kubeConfig(unbound).makeApiClient(CoreV1Api), 'orders-2', { metadata: { labels: { [role]: 'leader' } } });
    expect(stored.metadata?.labels?.[role]).toBe('leader');
  });

  it("the kubelet's status updates (a subresource)", async () => {
    const stored = await asPod('orders-0').patchNamespacedPodStatus({ name: 'orders-2', namespace: 'shop', body: { status: { phase: 'Running' } } }, mergePatch);
    expect(stored.status?.phase).toBe('Running');
  });
});

describe('the real sidecar, run as the kubelet runs it, under the policy', () => {
  let zookeeper: ZooKeeperEnsemble;
  let running: RunningPod | undefined;

  beforeAll(async () => {
    zookeeper = await ZooKeeperEnsemble.start({ size: 1 });
  }, 60_000);

  afterEach(async () => {
    await running?.dispose();
    running = undefined;
  });

  afterAll(async () => {
    await zookeeper?.close();
  });

  it('labels its own pod leader with the epoch and demotes the stale leader, with the token bound to its pod', async () => {
    const template: V1Pod = {
      metadata: {
        name: 'orders-9',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/name': 'orders', 'zkleader.io/inject': 'true' },
        annotations: { 'zkleader.io/election': 'orders', 'zkleader.io/zookeeper': zookeeper.connectString, 'zkleader.io/session-timeout': '4s' },
      },
      spec: { serviceAccountName: 'orders', containers: [{ name: 'app', image: 'busybox:1.36' }] },
    };
    const injected = inject(template, defaultInjectorConfig(version));
    if (injected.kind !== 'injected') throw new Error(`not injected: ${JSON.stringify(injected)}`);
    const stored = await admin.createNamespacedPod({ namespace: 'shop', body: injected.pod });
    running = await runPod(stored, { kubelet: emu.kubeConfig(), podIP: '127.0.0.9' });

    // The sidecar holds a token bound to its pod, read the way the in-cluster configuration reads it.
    const kc = new KubeConfig();
    kc.loadFromFile(running.kubeconfig ?? '');
    const tokenFile = (kc.getCurrentUser()?.authProvider as { config: { tokenFile: string } }).config.tokenFile;
    expect(emu.userOf(readFileSync(tokenFile, 'utf8'))?.extra?.[POD_NAME_EXTRA]).toEqual(['orders-9']);

    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && emu.getPod('shop', 'orders-9')?.metadata?.labels?.[role] !== 'leader') await sleep(100);
    const leaderFile = (await running.leaderJson()) as { epoch?: string } | undefined;
    const own = emu.getPod('shop', 'orders-9')?.metadata;
    expect([own?.labels?.[role], own?.annotations?.[epoch]]).toEqual(['leader', leaderFile?.epoch]);
    expect(emu.getPod('shop', 'orders-1')?.metadata?.labels?.[role]).toBe('follower');
    expect(emu.getPod('shop', 'orders-1')?.metadata?.annotations?.[epoch]).toBeUndefined();
    expect(running.logs()).not.toMatch(/pod label update failed|forbidden/i);
  }, 40_000);
});
