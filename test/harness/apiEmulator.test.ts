import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  EventsV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { ApiEmulator } from '../support/apiEmulator/index.js';

let emu: ApiEmulator;
let core: CoreV1Api;
let ns = 'shop';
let nsCounter = 0;

beforeAll(async () => {
  emu = await ApiEmulator.start();
  const kc = new KubeConfig();
  kc.loadFromFile(await emu.kubeconfigFile());
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await emu.close();
});

beforeEach(() => {
  emu.clearFaults();
  // A namespace per test keeps the tests independent while they share one emulator.
  nsCounter += 1;
  ns = `shop-${nsCounter}`;
});

function pod(name: string, labels: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name, labels },
    spec: { containers: [{ name: 'app', image: 'nginx', volumeMounts: [{ name: 'data', mountPath: '/data' }] }], volumes: [{ name: 'data', emptyDir: {} }] },
  };
}

interface StatusBody {
  kind: string;
  apiVersion: string;
  status: string;
  message: string;
  reason: string;
  code: number;
  details?: { name?: string; kind?: string; causes?: Array<{ field: string; reason: string; message: string }>; retryAfterSeconds?: number };
}

/** Runs a call that must fail and returns the HTTP code and the Status body it failed with. */
async function failure(call: Promise<unknown>): Promise<{ code: number; status: StatusBody; headers: Record<string, string> }> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body = typeof err.body === 'string' ? (JSON.parse(err.body) as StatusBody) : (err.body as StatusBody);
    return { code: err.code, status: body, headers: err.headers };
  }
  throw new Error('expected the API call to fail, but it succeeded');
}

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

describe('authentication', () => {
  test('a request without the bearer token, or with a wrong one, is 401 Unauthorized', async () => {
    for (const authorization of [undefined, 'Bearer wrong']) {
      const res = await fetch(`${emu.url}/api/v1/namespaces/default/pods`, { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    }
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: emu.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'not-the-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const { code } = await failure(kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'default' }));
    expect(code).toBe(401);
  });
});

describe('pods', () => {
  test('create, get, list and delete; server-set metadata; 404 and 409 AlreadyExists', async () => {
    const created = await core.createNamespacedPod({ namespace: ns, body: pod('web-0', { app: 'web' }) });
    expect(created.metadata).toMatchObject({ name: 'web-0', namespace: ns });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);

    const generated = await core.createNamespacedPod({ namespace: ns, body: { ...pod(''), metadata: { generateName: 'web-' } } });
    expect(generated.metadata?.name).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(Number(generated.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));

    expect((await core.readNamespacedPod({ name: 'web-0', namespace: ns })).metadata?.uid).toBe(created.metadata?.uid);
    const list = await core.listNamespacedPod({ namespace: ns });
    expect(list.items.map((p) => p.metadata?.name).sort()).toEqual(['web-0', generated.metadata?.name].sort());

    const dup = await failure(core.createNamespacedPod({ namespace: ns, body: pod('web-0') }));
    expect(dup.code).toBe(409);
    expect(dup.status).toMatchObject({ reason: 'AlreadyExists', message: 'pods "web-0" already exists', details: { name: 'web-0', kind: 'pods' } });

    await core.deleteNamespacedPod({ name: 'web-0', namespace: ns });
    const gone = await failure(core.readNamespacedPod({ name: 'web-0', namespace: ns }));
    expect(gone.code).toBe(404);
    expect(gone.status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "web-0" not found',
      reason: 'NotFound',
      details: { name: 'web-0', kind: 'pods' },
      code: 404,
    });
    expect(emu.getPod(ns, 'web-0')).toBeUndefined();
  });

  test('create fills the apiserver defaults a client can observe', async () => {
    const body = pod('d');
    body.spec?.containers.push({ name: 'pinned', image: 'registry.example/app:1.2', readinessProbe: { httpGet: { path: '/readyz', port: 4040 } } });
    const created = await core.createNamespacedPod({ namespace: ns, body });
    expect(created.spec).toMatchObject({ restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', serviceAccountName: 'default', terminationGracePeriodSeconds: 30 });
    expect(created.spec?.containers.map((c) => c.imagePullPolicy)).toEqual(['Always', 'IfNotPresent']);
    expect(created.spec?.containers[1]?.readinessProbe).toMatchObject({ periodSeconds: 10, failureThreshold: 3, httpGet: { scheme: 'HTTP' } });
  });

  test.each<[string, string, string[]]>([
    ['equality', 'role=leader', ['a']],
    ['double equals', 'role==leader', ['a']],
    ['inequality (also matches pods without the key)', 'role!=leader', ['b', 'c']],
    ['set in', 'tier in (front, back)', ['a', 'b']],
    ['set notin (also matches pods without the key)', 'tier notin (front)', ['b', 'c']],
    ['exists', 'tier', ['a', 'b']],
    ['does not exist', '!tier', ['c']],
    ['comma is AND', 'app=web,role=follower,tier', ['b']],
    ['prefixed keys', 'zkleader.io/role=leader', ['a']],
  ])('label selector: %s', async (_name, selector, expected) => {
    await core.createNamespacedPod({ namespace: ns, body: pod('a', { app: 'web', role: 'leader', tier: 'front', 'zkleader.io/role': 'leader' }) });
    await core.createNamespacedPod({ namespace: ns, body: pod('b', { app: 'web', role: 'follower', tier: 'back' }) });
    await core.createNamespacedPod({ namespace: ns, body: pod('c', { app: 'web' }) });
    const list = await core.listNamespacedPod({ namespace: ns, labelSelector: selector });
    expect(list.items.map((p) => p.metadata?.name).sort()).toEqual(expected);
  });

  test('fieldSelector metadata.name and a malformed label selector (400)', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('a') });
    await core.createNamespacedPod({ namespace: ns, body: pod('b') });
    const list = await core.listNamespacedPod({ namespace: ns, fieldSelector: 'metadata.name=b' });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['b']);
    for (const selector of ['tier in front', 'tier in ()', 'a=b=c']) {
      const bad = await failure(core.listNamespacedPod({ namespace: ns, labelSelector: selector }));
      expect(bad.code).toBe(400);
      expect(bad.status.reason).toBe('BadRequest');
    }
  });

  test('merge patch adds labels and deletes one with null', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('p', { app: 'web', old: 'x' }) });
    const patched = await core.patchNamespacedPod(
      { name: 'p', namespace: ns, body: { metadata: { labels: { 'zkleader.io/role': 'leader', old: null }, annotations: { 'zkleader.io/leader-epoch': '4294967301' } } } },
      merge,
    );
    expect(patched.metadata?.labels).toEqual({ app: 'web', 'zkleader.io/role': 'leader' });
    expect(emu.getPod(ns, 'p')?.metadata?.annotations).toEqual({ 'zkleader.io/leader-epoch': '4294967301' });
    expect(emu.requests.at(-1)).toMatchObject({ method: 'PATCH', path: `/api/v1/namespaces/${ns}/pods/p`, contentType: 'application/merge-patch+json', status: 200 });
  });

  test('strategic merge patch merges label maps (null deletes) and containers by name', async () => {
    const body = pod('p', { app: 'web', old: 'x' });
    body.spec?.containers.push({ name: 'side', image: 'busybox' });
    await core.createNamespacedPod({ namespace: ns, body });
    const patched = await core.patchNamespacedPod(
      {
        name: 'p',
        namespace: ns,
        body: { metadata: { labels: { 'zkleader.io/role': 'follower', old: null } }, spec: { containers: [{ name: 'side', image: 'busybox:2' }] } },
      },
      strategic,
    );
    expect(patched.metadata?.labels).toEqual({ app: 'web', 'zkleader.io/role': 'follower' });
    // Merged by name: the other container is kept, the named one gets the new image only.
    expect(patched.spec?.containers.map((c) => [c.name, c.image])).toEqual([
      ['app', 'nginx'],
      ['side', 'busybox:2'],
    ]);
  });

  test('JSON patch with ~1 escaping in zkleader.io/role, and a failing test op (422) leaves the pod unchanged', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('p', { 'zkleader.io/role': 'follower' }) });
    const patched = await core.patchNamespacedPod(
      {
        name: 'p',
        namespace: ns,
        body: [
          { op: 'test', path: '/metadata/labels/zkleader.io~1role', value: 'follower' },
          { op: 'replace', path: '/metadata/labels/zkleader.io~1role', value: 'leader' },
        ],
      },
      jsonPatch,
    );
    expect(patched.metadata?.labels).toEqual({ 'zkleader.io/role': 'leader' });

    const before = emu.getPod(ns, 'p')?.metadata?.resourceVersion;
    const failed = await failure(
      core.patchNamespacedPod(
        {
          name: 'p',
          namespace: ns,
          body: [
            { op: 'test', path: '/metadata/labels/zkleader.io~1role', value: 'follower' },
            { op: 'remove', path: '/metadata/labels/zkleader.io~1role' },
          ],
        },
        jsonPatch,
      ),
    );
    expect(failed.code).toBe(422);
    expect(failed.status.message).toContain('/metadata/labels/zkleader.io~1role');
    expect(emu.getPod(ns, 'p')?.metadata?.labels).toEqual({ 'zkleader.io/role': 'leader' });
    expect(emu.getPod(ns, 'p')?.metadata?.resourceVersion).toBe(before);
  });

  test('a stale resourceVersion in a patch or an update is 409 Conflict; a matching one succeeds', async () => {
    const created = await core.createNamespacedPod({ namespace: ns, body: pod('p', { app: 'web' }) });
    const rv = created.metadata?.resourceVersion ?? '';
    const bumped = await core.patchNamespacedPod({ name: 'p', namespace: ns, body: { metadata: { resourceVersion: rv, labels: { a: '1' } } } }, merge);
    expect(bumped.metadata?.resourceVersion).not.toBe(rv);

    const stale = await failure(core.patchNamespacedPod({ name: 'p', namespace: ns, body: { metadata: { resourceVersion: rv, labels: { a: '2' } } } }, merge));
    expect(stale.code).toBe(409);
    expect(stale.status).toMatchObject({
      reason: 'Conflict',
      message: 'Operation cannot be fulfilled on pods "p": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: 'p', kind: 'pods' },
    });

    const staleJson = await failure(
      core.patchNamespacedPod({ name: 'p', namespace: ns, body: [{ op: 'replace', path: '/metadata/resourceVersion', value: rv }] }, jsonPatch),
    );
    expect(staleJson.code).toBe(409);

    const current = await core.readNamespacedPod({ name: 'p', namespace: ns });
    const staleUpdate = await failure(core.replaceNamespacedPod({ name: 'p', namespace: ns, body: { ...current, metadata: { ...current.metadata, resourceVersion: rv } } }));
    expect(staleUpdate.code).toBe(409);
    const updated = await core.replaceNamespacedPod({ name: 'p', namespace: ns, body: { ...current, metadata: { ...current.metadata, labels: { a: '3' } } } });
    expect(updated.metadata?.labels).toEqual({ a: '3' });
    expect(emu.getPod(ns, 'p')?.metadata?.labels).toEqual({ a: '3' });
  });

  test('a no-op patch does not advance the resourceVersion; a pod spec change other than images is 422', async () => {
    const created = await core.createNamespacedPod({ namespace: ns, body: pod('p', { app: 'web' }) });
    const same = await core.patchNamespacedPod({ name: 'p', namespace: ns, body: { metadata: { labels: { app: 'web' } } } }, merge);
    expect(same.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
    const frozen = await failure(core.patchNamespacedPod({ name: 'p', namespace: ns, body: { spec: { hostNetwork: true } } }, merge));
    expect(frozen.code).toBe(422);
    expect(frozen.status.details?.causes?.[0]).toMatchObject({ field: 'spec', reason: 'FieldValueForbidden' });
  });

  test.each<[string, (p: V1Pod) => void, string, string]>([
    ['duplicate container names', (p) => p.spec?.containers.push({ name: 'app', image: 'x' }), 'spec.containers[1].name', 'FieldValueDuplicate'],
    ['a mount that names no volume', (p) => void (p.spec!.volumes = []), 'spec.containers[0].volumeMounts[0].name', 'FieldValueNotFound'],
    ['a bad label key', (p) => void (p.metadata!.labels = { 'bad key': 'x' }), 'metadata.labels', 'FieldValueInvalid'],
    ['a schema violation: containers missing', (p) => void delete (p.spec as { containers?: unknown }).containers, 'spec.containers', 'FieldValueRequired'],
  ])('create with %s is 422 Invalid naming the field', async (_name, mutate, field, reason) => {
    const body = pod('bad');
    mutate(body);
    const { code, status } = await failure(core.createNamespacedPod({ namespace: ns, body }));
    expect(code).toBe(422);
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Invalid', details: { name: 'bad', kind: 'Pod' } });
    expect(status.message).toMatch(/^Pod "bad" is invalid: /);
    expect(status.message).toContain(field);
    expect(status.details?.causes).toContainEqual(expect.objectContaining({ field, reason }));
    expect(emu.getPod(ns, 'bad')).toBeUndefined();
  });

  test('putPod validates and keeps status; getPod and listPods read the store', () => {
    const stored = emu.putPod({ ...pod('direct', { app: 'x' }), metadata: { name: 'direct', namespace: ns, labels: { app: 'x' } }, status: { podIP: '10.0.0.7' } });
    expect(stored.metadata?.uid).toBeDefined();
    expect(emu.getPod(ns, 'direct')?.status?.podIP).toBe('10.0.0.7');
    expect(emu.listPods(ns).map((p) => p.metadata?.name)).toEqual(['direct']);
    expect(() => emu.putPod({ metadata: { name: 'x', namespace: ns }, spec: { containers: [] } })).toThrow(/spec\.containers: Required value/);
  });

  test('the pod status subresource changes status only', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('p', { app: 'web' }) });
    const res = await core.patchNamespacedPodStatus({ name: 'p', namespace: ns, body: { status: { podIP: '10.1.2.3' }, metadata: { labels: { ignored: 'yes' } } } }, merge);
    expect(res.status?.podIP).toBe('10.1.2.3');
    expect(res.metadata?.labels).toEqual({ app: 'web' });
    // And a main-resource patch cannot change status.
    const main = await core.patchNamespacedPod({ name: 'p', namespace: ns, body: { status: { podIP: '9.9.9.9' } } }, merge);
    expect(main.status?.podIP).toBe('10.1.2.3');
  });

  test('admission steps registered with onPodCreate run before validation and can mutate', async () => {
    const remove = emu.onPodCreate((obj, attrs) => {
      expect(attrs).toMatchObject({ operation: 'CREATE', resource: 'pods', namespace: ns });
      return { ...obj, metadata: { ...obj.metadata, labels: { ...obj.metadata.labels, 'zkleader.io/role': 'follower' } } };
    });
    try {
      const created = await core.createNamespacedPod({ namespace: ns, body: pod('p', { app: 'web' }) });
      expect(created.metadata?.labels).toEqual({ app: 'web', 'zkleader.io/role': 'follower' });
    } finally {
      remove();
    }
    const plain = await core.createNamespacedPod({ namespace: ns, body: pod('q', { app: 'web' }) });
    expect(plain.metadata?.labels).toEqual({ app: 'web' });
  });
});

describe('faults', () => {
  test('403 Forbidden with the apiserver wording, for the matching verb only, until removed', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('p') });
    const remove = emu.addFault({ verb: 'patch', resource: 'pods', status: 403 });
    const denied = await failure(core.patchNamespacedPod({ name: 'p', namespace: ns, body: { metadata: { labels: { a: 'b' } } } }, merge));
    expect(denied.code).toBe(403);
    expect(denied.status).toMatchObject({
      reason: 'Forbidden',
      message: `pods "p" is forbidden: User "system:serviceaccount:default:default" cannot patch resource "pods" in API group "" in the namespace "${ns}"`,
      details: { name: 'p', kind: 'pods' },
    });
    await core.readNamespacedPod({ name: 'p', namespace: ns });
    expect((await failure(core.patchNamespacedPod({ name: 'p', namespace: ns, body: {} }, merge))).code).toBe(403);
    remove();
    await core.patchNamespacedPod({ name: 'p', namespace: ns, body: { metadata: { labels: { a: 'b' } } } }, merge);
  });

  test('500 InternalError for `times` requests, then normal service; 429 carries Retry-After', async () => {
    emu.addFault({ verb: 'list', resource: 'pods', status: 500, times: 2 });
    for (let i = 0; i < 2; i++) {
      const { code, status } = await failure(core.listNamespacedPod({ namespace: ns }));
      expect(code).toBe(500);
      expect(status.reason).toBe('InternalError');
    }
    await core.listNamespacedPod({ namespace: ns });

    emu.addFault({ verb: 'get', resource: 'pods', status: 429, times: 1, name: 'x' });
    const limited = await failure(core.readNamespacedPod({ name: 'x', namespace: ns }));
    expect(limited.code).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.status.reason).toBe('TooManyRequests');
  });

  test('a fault scoped to another namespace does not fire; delayMs delays the answer', async () => {
    emu.addFault({ verb: 'create', resource: 'pods', status: 503, namespace: 'elsewhere' });
    await core.createNamespacedPod({ namespace: ns, body: pod('p') });
    emu.addFault({ verb: 'get', resource: 'pods', status: 503, delayMs: 200, times: 1 });
    const started = Date.now();
    const { code } = await failure(core.readNamespacedPod({ name: 'p', namespace: ns }));
    expect(code).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });
});

describe('events', () => {
  test('core/v1 and events.k8s.io/v1 events share one store; names are generated', async () => {
    const coreEvent = await core.createNamespacedEvent({
      namespace: ns,
      body: {
        metadata: { generateName: 'p.' },
        involvedObject: { kind: 'Pod', name: 'p', namespace: ns },
        reason: 'LeaderElected',
        message: 'p became leader',
        type: 'Normal',
      },
    });
    expect(coreEvent.metadata?.name).toMatch(/^p\.[a-z0-9]{5}$/);
    const kc = emu.kubeConfig();
    const eventsApi = kc.makeApiClient(EventsV1Api);
    await eventsApi.createNamespacedEvent({
      namespace: ns,
      body: {
        metadata: { name: 'p.second' },
        eventTime: new Date(),
        reportingController: 'zkleader.io/sidecar',
        reportingInstance: 'p',
        action: 'Elect',
        reason: 'LeaderLost',
        regarding: { kind: 'Pod', name: 'p', namespace: ns },
        note: 'p stepped down',
        type: 'Normal',
      },
    });
    const events = emu.events(ns);
    expect(events.map((e) => [e.reason, e.message, e.involvedObject.name])).toEqual([
      ['LeaderElected', 'p became leader', 'p'],
      ['LeaderLost', 'p stepped down', 'p'],
    ]);
    expect((await core.listNamespacedEvent({ namespace: ns })).items).toHaveLength(2);
    const v1List = await eventsApi.listNamespacedEvent({ namespace: ns });
    expect(v1List.items.map((e) => e.note)).toEqual(['p became leader', 'p stepped down']);
  });
});

describe('secrets', () => {
  test('create with stringData, get, replace, merge patch, delete', async () => {
    const created = await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'tls' }, stringData: { 'ca.crt': 'PEM' } } });
    expect(created.data).toEqual({ 'ca.crt': Buffer.from('PEM').toString('base64') });
    expect(created.type).toBe('Opaque');
    const read = await core.readNamespacedSecret({ name: 'tls', namespace: ns });
    const replaced = await core.replaceNamespacedSecret({ name: 'tls', namespace: ns, body: { ...read, data: { 'tls.key': 'S0VZ' } } });
    expect(replaced.data).toEqual({ 'tls.key': 'S0VZ' });
    const patched = await core.patchNamespacedSecret({ name: 'tls', namespace: ns, body: { data: { 'tls.crt': 'Q1JU' } } }, merge);
    expect(Object.keys(patched.data ?? {}).sort()).toEqual(['tls.crt', 'tls.key']);
    expect(emu.getSecret(ns, 'tls')?.data).toEqual(patched.data);
    const status = await core.deleteNamespacedSecret({ name: 'tls', namespace: ns });
    expect(status).toMatchObject({ status: 'Success', details: { name: 'tls', kind: 'secrets' } });
    expect((await failure(core.readNamespacedSecret({ name: 'tls', namespace: ns }))).code).toBe(404);
  });
});

describe('mutating webhook configurations', () => {
  test('cluster-scoped create, list, get, merge and JSON patch of the caBundle, delete', async () => {
    const admission = emu.kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    const webhook = {
      name: 'inject.zkleader.io',
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      clientConfig: { service: { name: 'zkleader-webhook', namespace: 'zkleader-system', path: '/mutate' } },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    };
    await admission.createMutatingWebhookConfiguration({ body: { metadata: { name: 'zkleader' }, webhooks: [webhook] } });
    expect((await admission.listMutatingWebhookConfiguration()).items.map((m) => m.metadata?.name)).toEqual(['zkleader']);
    const caBundle = Buffer.from('CA').toString('base64');
    expect(emu.mutatingWebhookConfigurations().map((m) => m.webhooks?.[0]?.name)).toEqual(['inject.zkleader.io']);
    const patched = await admission.patchMutatingWebhookConfiguration(
      { name: 'zkleader', body: [{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: caBundle }] },
      jsonPatch,
    );
    expect(patched.webhooks?.[0]?.clientConfig.caBundle).toBe(caBundle);
    const merged = await admission.patchMutatingWebhookConfiguration({ name: 'zkleader', body: { metadata: { labels: { app: 'zkleader' } } } }, merge);
    expect(merged.metadata?.labels).toEqual({ app: 'zkleader' });
    expect((await admission.readMutatingWebhookConfiguration({ name: 'zkleader' })).webhooks?.[0]?.clientConfig.caBundle).toBe(caBundle);
    await admission.deleteMutatingWebhookConfiguration({ name: 'zkleader' });
    const gone = await failure(admission.readMutatingWebhookConfiguration({ name: 'zkleader' }));
    expect(gone.status.message).toBe('mutatingwebhookconfigurations.admissionregistration.k8s.io "zkleader" not found');
  });
});

describe('HTTP edges', () => {
  const headers = (): Record<string, string> => ({ authorization: `Bearer ${emu.token}`, 'content-type': 'application/json' });

  test('malformed JSON is 400, a body over 3 MiB is 413, an unknown path is 404, an unknown patch type is 415', async () => {
    const malformed = await fetch(`${emu.url}/api/v1/namespaces/${ns}/pods`, { method: 'POST', headers: headers(), body: '{"metadata": ' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });

    const huge = await fetch(`${emu.url}/api/v1/namespaces/${ns}/pods`, { method: 'POST', headers: headers(), body: `{"x":"${'a'.repeat(3 * 1024 * 1024)}"}` });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ reason: 'RequestEntityTooLarge', code: 413 });

    const unknown = await fetch(`${emu.url}/api/v1/namespaces/${ns}/widgets`, { headers: headers() });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'the server could not find the requested resource' });

    await core.createNamespacedPod({ namespace: ns, body: pod('p') });
    const yamlPatch = await fetch(`${emu.url}/api/v1/namespaces/${ns}/pods/p`, { method: 'PATCH', headers: { ...headers(), 'content-type': 'text/plain' }, body: '{}' });
    expect(yamlPatch.status).toBe(415);
  });

  test('discovery: /version, /api and /apis', async () => {
    const version = (await (await fetch(`${emu.url}/version`, { headers: headers() })).json()) as { major: string };
    expect(version.major).toBe('1');
    const apis = (await (await fetch(`${emu.url}/apis`, { headers: headers() })).json()) as { groups: Array<{ name: string }> };
    expect(apis.groups.map((g) => g.name).sort()).toEqual(['admissionregistration.k8s.io', 'events.k8s.io']);
    const namespaces = await core.listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toEqual(expect.arrayContaining(['default', 'kube-system']));
  });
});
