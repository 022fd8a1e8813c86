import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, type V1MutatingWebhook, type V1Pod, type V1PodSpec, type V1Volume } from '@kubernetes/client-node';
import { pino } from 'pino';
import { createCertificateAuthority, createServingCertificate, type CertificatePair } from '../../certs/certificateAuthority.js';
import { ApiEmulator, SERVICE_ACCOUNT_MOUNT_PATH, SERVICE_ACCOUNT_VOLUME_PREFIX } from '../support/apiEmulator/index.js';
import { deployedWebhookConfiguration, deployedWebhookService } from '../support/deployedWebhookConfiguration.js';
import { startWebhookProcess, type WebhookProcess } from '../support/webhookProcess.js';

/** What a test webhook received, and what it answers: a response, or a hang past any timeout. */
interface ReviewRequest {
  uid: string;
  object: V1Pod;
  [field: string]: unknown;
}
type Answer = { allowed: boolean; patch?: object[]; status?: { code?: number; message?: string }; warnings?: string[]; uid?: string } | 'hang';

interface TestWebhook {
  port: number;
  requests: ReviewRequest[];
  answer: (request: ReviewRequest) => Answer;
}

let ca: CertificatePair;
let otherCa: CertificatePair;
let serving: CertificatePair;
const servers: Server[] = [];
const hooks = new Map<string, TestWebhook>();

/** An HTTPS webhook on loopback serving the Service `name.hooks` with a certificate from `ca`. */
async function testWebhook(name: string, answer: TestWebhook['answer']): Promise<TestWebhook> {
  const hook: TestWebhook = { port: 0, requests: [], answer };
  const server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString()) as { request: ReviewRequest };
      hook.requests.push(review.request);
      const a = hook.answer(review.request);
      if (a === 'hang') return;
      const { patch, ...rest } = a;
      const response = { uid: review.request.uid, ...rest, ...(patch && { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }) };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  hook.port = (server.address() as AddressInfo).port;
  hooks.set(name, hook);
  return hook;
}

let emu: ApiEmulator;
let core: CoreV1Api;
let admissionApi: AdmissionregistrationV1Api;
let removeChain: () => void;

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'chain-test-ca' });
  otherCa = await createCertificateAuthority({ commonName: 'someone-else' });
  serving = await createServingCertificate(ca, { dnsNames: ['label.hooks.svc', 'container.hooks.svc', 'slow.hooks.svc'], ipAddresses: ['127.0.0.1'] });
  emu = await ApiEmulator.start();
  const resolver = (namespace: string, name: string, port: number): string => {
    const hook = hooks.get(name);
    if (namespace !== 'hooks' || port !== 443 || !hook) throw new Error(`no test webhook behind service ${namespace}/${name}:${port}`);
    return `https://127.0.0.1:${hook.port}`;
  };
  removeChain = emu.useWebhookAdmission({ serviceResolver: resolver, log: pino({ level: 'silent' }) });
  const kc = emu.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  admissionApi = kc.makeApiClient(AdmissionregistrationV1Api);
});

afterEach(async () => {
  for (const config of emu.mutatingWebhookConfigurations()) await admissionApi.deleteMutatingWebhookConfiguration({ name: config.metadata?.name ?? '' });
  await Promise.all(servers.splice(0).map(async (s) => {
    s.closeAllConnections();
    s.close();
    await once(s, 'close');
  }));
  hooks.clear();
});

afterAll(async () => {
  removeChain?.();
  await emu?.close();
});

const podRule = { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' };

function webhookEntry(service: string, overrides: Partial<V1MutatingWebhook> = {}): V1MutatingWebhook {
  return {
    name: `${service}.hooks.example`,
    clientConfig: { service: { namespace: 'hooks', name: service, path: '/mutate' }, caBundle: Buffer.from(ca.certPem).toString('base64') },
    rules: [podRule],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: 5,
    failurePolicy: 'Fail',
    ...overrides,
  };
}

async function register(name: string, ...webhooks: V1MutatingWebhook[]): Promise<void> {
  await admissionApi.createMutatingWebhookConfiguration({ body: { metadata: { name }, webhooks } });
}

function newPod(name: string, labels?: Record<string, string>): V1Pod {
  return { metadata: { name, ...(labels && { labels }) }, spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] } };
}

const addLabel = (key: string, value: string) => (r: ReviewRequest): Answer => ({
  allowed: true,
  patch: [r.object.metadata?.labels ? { op: 'add', path: `/metadata/labels/${key.replace('/', '~1')}`, value } : { op: 'add', path: '/metadata/labels', value: { [key]: value } }],
});

/** The Status of a refused create, as client-node reports it. */
async function refusal(promise: Promise<unknown>): Promise<{ code: number; message: string; reason?: string }> {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body = JSON.parse(err.body as string) as { message: string; reason?: string };
    return { code: err.code, ...body };
  }
  throw new Error('expected the create to be refused');
}

describe('which webhooks are called', () => {
  it('matches rules, namespaceSelector (with kubernetes.io/metadata.name) and objectSelector', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    emu.putNamespace({ metadata: { name: 'tenant-a', labels: { 'kubernetes.io/metadata.name': 'tenant-a', tier: 'gold' } } });
    await register(
      'a',
      webhookEntry('label', {
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }], matchLabels: { tier: 'gold' } },
        objectSelector: { matchExpressions: [{ key: 'skip', operator: 'DoesNotExist' }] },
      }),
    );
    const created = await core.createNamespacedPod({ namespace: 'tenant-a', body: newPod('one') });
    expect(created.metadata?.labels).toEqual({ mutated: 'yes' });
    const skippedByObject = await core.createNamespacedPod({ namespace: 'tenant-a', body: newPod('two', { skip: 'x' }) });
    expect(skippedByObject.metadata?.labels).toEqual({ skip: 'x' });
    // default has no tier label; kube-system is excluded by name.
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('three') })).metadata?.labels).toBeUndefined();
    expect((await core.createNamespacedPod({ namespace: 'kube-system', body: newPod('four') })).metadata?.labels).toBeUndefined();
    expect(hook.requests).toHaveLength(1);
  });

  it('skips webhooks whose rules name other operations, groups, resources or scope', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    await register(
      'a',
      webhookEntry('label', { name: 'a.hooks.example', rules: [{ ...podRule, operations: ['UPDATE'] }] }),
      webhookEntry('label', { name: 'b.hooks.example', rules: [{ ...podRule, apiGroups: ['apps'] }] }),
      webhookEntry('label', { name: 'c.hooks.example', rules: [{ ...podRule, resources: ['pods/status'] }] }),
      webhookEntry('label', { name: 'd.hooks.example', rules: [{ ...podRule, scope: 'Cluster' }] }),
    );
    await core.createNamespacedPod({ namespace: 'default', body: newPod('plain') });
    expect(hook.requests).toHaveLength(0);
    await register('b', webhookEntry('label', { rules: [{ operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*'] }] }));
    await core.createNamespacedPod({ namespace: 'default', body: newPod('starred') });
    expect(hook.requests).toHaveLength(1);
  });
});

describe('the AdmissionReview', () => {
  it('carries what the apiserver sends: uid, kinds, resources, namespace, CREATE, userInfo, the defaulted object, no oldObject, dryRun, options', async () => {
    const hook = await testWebhook('label', () => ({ allowed: true }));
    await register('a', webhookEntry('label'));
    await core.createNamespacedPod({ namespace: 'shop', body: { ...newPod(''), metadata: { generateName: 'orders-' } }, dryRun: 'All' });
    const [request] = hook.requests;
    expect(request).toMatchObject({
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:default:default' },
      oldObject: null,
      dryRun: true,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    });
    expect(request?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(request).not.toHaveProperty('name');
    // The webhook sees the pod after defaulting, before the name is generated.
    expect(request?.object.metadata).toMatchObject({ generateName: 'orders-', namespace: 'shop' });
    expect(request?.object.metadata?.name).toBeFalsy();
    expect(request?.object.spec?.restartPolicy).toBe('Always');
    expect(emu.listPods('shop')).toHaveLength(0);
  });
});

describe('answers', () => {
  it('applies JSON patches in order and surfaces warnings as Warning headers', async () => {
    await testWebhook('label', (r) => ({ ...(addLabel('first', '1')(r) as object), allowed: true, warnings: ['zkleader.io/colour is not a known annotation', 'say "hi"'] }));
    await testWebhook('container', (r) => ({ allowed: true, patch: [{ op: 'add', path: '/spec/containers/-', value: { name: 'extra', image: 'busybox:1.36' } }, { op: 'add', path: '/metadata/labels/second', value: r.object.metadata?.labels?.first ?? 'unseen' }] }));
    await register('a', webhookEntry('label'), webhookEntry('container'));
    const answer = await core.createNamespacedPodWithHttpInfo({ namespace: 'default', body: newPod('patched') });
    expect(answer.data.metadata?.labels).toEqual({ first: '1', second: '1' });
    expect(answer.data.spec?.containers.map((c) => c.name)).toEqual(['app', 'extra']);
    // Defaults are applied to what webhooks add.
    expect(answer.data.spec?.containers[1]?.terminationMessagePath).toBe('/dev/termination-log');
    expect(answer.headers.warning).toBe('299 - "zkleader.io/colour is not a known annotation", 299 - "say \\"hi\\""');
  });

  it('turns a denial into the status code and message the apiserver sends', async () => {
    await testWebhook('label', (r) => (r.object.metadata?.labels?.plain ? { allowed: false } : { allowed: false, status: { code: 403, message: 'pods here need a team label' } }));
    await register('a', webhookEntry('label'));
    expect(await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('denied') }))).toEqual({
      code: 403,
      message: 'admission webhook "label.hooks.example" denied the request: pods here need a team label',
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
    });
    const bare = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('bare', { plain: 'x' }) }));
    expect(bare).toMatchObject({ code: 400, message: 'admission webhook "label.hooks.example" denied the request without explanation' });
    expect(emu.listPods('default').map((p) => p.metadata?.name)).not.toContain('denied');
  });

  it('validates the patched pod before storing it', async () => {
    await testWebhook('label', () => ({ allowed: true, patch: [{ op: 'add', path: '/spec/containers/-', value: { name: 'app', image: 'x' } }] }));
    await register('a', webhookEntry('label'));
    const r = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('twice') }));
    expect(r).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(r.message).toContain('spec.containers[1].name: Duplicate value: "app"');
  });

  it('refuses a patch that does not apply with 500, whatever the failurePolicy', async () => {
    await testWebhook('label', () => ({ allowed: true, patch: [{ op: 'replace', path: '/metadata/nothing/here', value: 1 }] }));
    await register('a', webhookEntry('label', { failurePolicy: 'Ignore' }));
    const r = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('badpatch') }));
    expect(r).toMatchObject({ code: 500, reason: 'InternalError' });
    expect(r.message).toMatch(/^Internal error occurred: /);
  });
});

describe('failures and failurePolicy', () => {
  it('Fail: a webhook that cannot be reached refuses the pod with 500 in the apiserver\'s words; Ignore: the pod is created untouched', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    const port = hook.port;
    await register('a', webhookEntry('label'));
    servers.splice(0).forEach((s) => s.close());
    await new Promise((r) => setTimeout(r, 50));
    const r = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('down') }));
    expect(r).toMatchObject({ code: 500, reason: 'InternalError' });
    expect(r.message).toBe(
      `Internal error occurred: failed calling webhook "label.hooks.example": failed to call webhook: Post "https://label.hooks.svc:443/mutate?timeout=5s": dial tcp 127.0.0.1:${port}: connect: connection refused`,
    );
    await admissionApi.deleteMutatingWebhookConfiguration({ name: 'a' });
    await register('b', webhookEntry('label', { failurePolicy: 'Ignore' }));
    const created = await core.createNamespacedPod({ namespace: 'default', body: newPod('ignored') });
    expect(created.metadata?.labels).toBeUndefined();
  });

  it('trusts only the caBundle and checks the certificate against the Service DNS name', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    await register('a', webhookEntry('label', { clientConfig: { service: { namespace: 'hooks', name: 'label', path: '/mutate' }, caBundle: Buffer.from(otherCa.certPem).toString('base64') } }));
    const wrongCa = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('untrusted') }));
    expect(wrongCa.code).toBe(500);
    expect(wrongCa.message).toContain('failed calling webhook "label.hooks.example"');
    await admissionApi.deleteMutatingWebhookConfiguration({ name: 'a' });
    // A URL by IP is checked against the certificate's IP SAN; a host name it does not carry is refused.
    await register('b', webhookEntry('label', { clientConfig: { url: `https://127.0.0.1:${hook.port}/mutate`, caBundle: Buffer.from(ca.certPem).toString('base64') } }));
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('byurl') })).metadata?.labels).toEqual({ mutated: 'yes' });
    await admissionApi.deleteMutatingWebhookConfiguration({ name: 'b' });
    await register('c', webhookEntry('label', { clientConfig: { url: `https://localhost:${hook.port}/mutate`, caBundle: Buffer.from(ca.certPem).toString('base64') } }));
    const wrongName = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('byname') }));
    expect(wrongName.message).toMatch(/failed calling webhook .*localhost/);
    expect(hook.requests).toHaveLength(1);
  });

  it('gives up after timeoutSeconds', async () => {
    await testWebhook('slow', () => 'hang');
    await register('a', webhookEntry('slow', { timeoutSeconds: 1 }));
    const started = Date.now();
    const r = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('slow') }));
    expect(r.message).toBe('Internal error occurred: failed calling webhook "slow.hooks.example": failed to call webhook: Post "https://slow.hooks.svc:443/mutate?timeout=1s": context deadline exceeded');
    // Generous bound: the point is that 1 s, not the client's own timeout, ended the call.
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('treats an answer for another uid as a failed call', async () => {
    await testWebhook('label', () => ({ allowed: true, uid: 'not-yours' }));
    await register('a', webhookEntry('label'));
    const r = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('uid') }));
    expect(r.message).toMatch(/failed calling webhook "label.hooks.example": received invalid webhook response: expected response.uid="[0-9a-f-]+", got "not-yours"/);
  });
});

describe('reinvocationPolicy', () => {
  // Without a token volume, so that only the webhooks change the pod (the ServiceAccount plugin's part is tested below).
  const noToken = (name: string): V1Pod => ({ ...newPod(name), spec: { ...newPod(name).spec!, automountServiceAccountToken: false } });
  const labeller = (): TestWebhook['answer'] => (r) =>
    r.object.metadata?.labels?.seen ? { allowed: true } : { allowed: true, patch: [{ op: 'add', path: '/metadata/labels', value: { seen: String(r.object.spec?.containers.length) } }] };
  const adder = (): TestWebhook['answer'] => (r) =>
    r.object.spec?.containers.some((c) => c.name === 'extra') ? { allowed: true } : { allowed: true, patch: [{ op: 'add', path: '/spec/containers/-', value: { name: 'extra', image: 'busybox:1.36' } }] };

  it('IfNeeded: an earlier webhook is called once more when a later one changed the object; Never: not', async () => {
    const first = await testWebhook('label', labeller());
    const second = await testWebhook('container', adder());
    // Configurations run in name order: "a" (the labeller) before "b" (the container adder).
    await register('a', webhookEntry('label', { reinvocationPolicy: 'IfNeeded' }));
    await register('b', webhookEntry('container', { reinvocationPolicy: 'IfNeeded' }));
    await core.createNamespacedPod({ namespace: 'default', body: noToken('again') });
    expect(first.requests.map((r) => r.object.spec?.containers.length)).toEqual([1, 2]);
    // The adder's own change does not reinvoke it, and the labeller's second answer changed nothing.
    expect(second.requests).toHaveLength(1);
    // What a webhook added is defaulted before the next webhook sees it.
    expect(first.requests[1]?.object.spec?.containers[1]?.terminationMessagePath).toBe('/dev/termination-log');

    first.requests.length = 0;
    second.requests.length = 0;
    await admissionApi.deleteMutatingWebhookConfiguration({ name: 'a' });
    await register('a', webhookEntry('label', { reinvocationPolicy: 'Never' }));
    await core.createNamespacedPod({ namespace: 'default', body: noToken('once') });
    expect(first.requests).toHaveLength(1);
    expect(second.requests).toHaveLength(1);
  });

  it('reruns the ServiceAccount plugin after a webhook changed the pod: a container a webhook added gets the token, and IfNeeded webhooks see that', async () => {
    const first = await testWebhook('label', labeller());
    const second = await testWebhook('container', adder());
    await register('a', webhookEntry('label', { reinvocationPolicy: 'Never' }));
    await register('b', webhookEntry('container', { reinvocationPolicy: 'IfNeeded' }));
    const created = await core.createNamespacedPod({ namespace: 'default', body: newPod('rerun') });
    const volume = created.spec?.volumes?.find((v) => v.name.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX))?.name;
    for (const c of created.spec?.containers ?? []) expect(c.volumeMounts).toEqual([{ name: volume, mountPath: SERVICE_ACCOUNT_MOUNT_PATH, readOnly: true }]);
    // The plugin's change in the second run reinvokes the IfNeeded adder (it saw "extra" without the mount), never the Never labeller.
    expect(second.requests.map((r) => r.object.spec?.containers.map((c) => (c.volumeMounts ?? []).length))).toEqual([[1], [1, 1]]);
    expect(first.requests).toHaveLength(1);
  });

  it('matches each webhook against the pod as earlier webhooks left it', async () => {
    await testWebhook('label', addLabel('mutated', 'yes'));
    const later = await testWebhook('container', () => ({ allowed: true }));
    await register('a', webhookEntry('label'));
    await register('b', webhookEntry('container', { objectSelector: { matchLabels: { mutated: 'yes' } } }));
    await core.createNamespacedPod({ namespace: 'default', body: newPod('relabelled') });
    expect(later.requests).toHaveLength(1);
  });
});

describe('matchConditions', () => {
  const gold = { name: 'gold-tier', expression: "has(object.metadata.labels) && 'tier' in object.metadata.labels && object.metadata.labels['tier'] == 'gold'" };
  const strict = { name: 'tier-label', expression: "object.metadata.labels['tier'] == 'gold'" };

  it('calls the webhook only when every condition is true, with object, oldObject and request bound', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    const requestCondition = {
      name: 'request-fields',
      expression: "oldObject == null && request.operation == 'CREATE' && request.namespace == 'default' && request.kind.kind == 'Pod' && request.userInfo.username.startsWith('system:serviceaccount:')",
    };
    await register('a', webhookEntry('label', { matchConditions: [gold, requestCondition] }));
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('golden', { tier: 'gold' }) })).metadata?.labels).toEqual({ tier: 'gold', mutated: 'yes' });
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('silver', { tier: 'silver' }) })).metadata?.labels).toEqual({ tier: 'silver' });
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('bare') })).metadata?.labels).toBeUndefined();
    expect(hook.requests.map((r) => r.object.metadata?.name)).toEqual(['golden']);
  });

  it('failurePolicy Fail: a condition that errors refuses the pod with 403, in the apiserver\'s words (naming the expression)', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    await register('a', webhookEntry('label', { matchConditions: [strict] }));
    const r = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('unlabelled') }));
    expect(r).toMatchObject({ code: 403, reason: 'Forbidden', message: `pods "unlabelled" is forbidden: expression '${strict.expression}' resulted in error: no such key: labels` });
    // A pod with only a generateName has no name yet.
    const generated = await refusal(core.createNamespacedPod({ namespace: 'default', body: { ...newPod(''), metadata: { generateName: 'gen-' } } }));
    expect(generated.message).toBe(`pods is forbidden: expression '${strict.expression}' resulted in error: no such key: labels`);
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('labelled', { tier: 'gold' }) })).metadata?.labels).toEqual({ tier: 'gold', mutated: 'yes' });
    expect(hook.requests).toHaveLength(1);
  });

  it('failurePolicy Ignore: a condition that errors skips the webhook', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    await register('a', webhookEntry('label', { failurePolicy: 'Ignore', matchConditions: [strict] }));
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('skipped') })).metadata?.labels).toBeUndefined();
    expect(hook.requests).toHaveLength(0);
  });

  it('a false condition skips the webhook even when another one errors, whatever the failurePolicy', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    await register('a', webhookEntry('label', { matchConditions: [strict, { name: 'never', expression: 'false' }] }));
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('neither') })).metadata?.labels).toBeUndefined();
    expect(hook.requests).toHaveLength(0);
  });

  it('a result that is not a bool, or the authorizer (not emulated), is an evaluation error', async () => {
    const hook = await testWebhook('label', addLabel('mutated', 'yes'));
    await register('a', webhookEntry('label', { matchConditions: [{ name: 'not-a-bool', expression: 'object.metadata.name' }] }));
    const r = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('named') }));
    expect(r).toMatchObject({ code: 403, message: "pods \"named\" is forbidden: expression 'object.metadata.name' resulted in error: must evaluate to bool but got string" });
    await admissionApi.deleteMutatingWebhookConfiguration({ name: 'a' });
    const authz = "authorizer.group('').resource('pods').check('create').allowed()";
    await register('b', webhookEntry('label', { matchConditions: [{ name: 'may-create', expression: authz }] }));
    const denied = await refusal(core.createNamespacedPod({ namespace: 'default', body: newPod('authz') }));
    expect(denied.message).toMatch(/^pods "authz" is forbidden: expression '.*' resulted in error: no such attribute: authorizer/);
    await admissionApi.deleteMutatingWebhookConfiguration({ name: 'b' });
    // Under Ignore the same errors skip the webhook.
    await register('c', webhookEntry('label', { failurePolicy: 'Ignore', matchConditions: [{ name: 'not-a-bool', expression: 'object.metadata.name' }] }));
    expect((await core.createNamespacedPod({ namespace: 'default', body: newPod('ignored-condition') })).metadata?.labels).toBeUndefined();
    expect(hook.requests).toHaveLength(0);
  });

  it('refuses a configuration whose conditions do not compile, are not bools, or are badly named, with 422', async () => {
    const causes = async (...matchConditions: Array<{ name: string; expression: string }>): Promise<string> => {
      const r = await refusal(admissionApi.createMutatingWebhookConfiguration({ body: { metadata: { name: 'bad' }, webhooks: [webhookEntry('label', { matchConditions })] } }));
      expect(r).toMatchObject({ code: 422, reason: 'Invalid' });
      return r.message;
    };
    expect(await causes({ name: 'syntax', expression: "object.metadata.name ==" })).toMatch(
      /^MutatingWebhookConfiguration\.admissionregistration\.k8s\.io "bad" is invalid: webhooks\[0\]\.matchConditions\[0\]\.expression: Invalid value: "object\.metadata\.name ==": compilation failed: ERROR: <input>:1:\d+: /,
    );
    expect(await causes({ name: 'typo', expression: "obj.metadata.name == 'x'" })).toContain("compilation failed: ERROR: <input>:1:1: undeclared reference to 'obj'");
    expect(await causes({ name: 'params', expression: 'params.enabled == true' })).toContain("undeclared reference to 'params'");
    expect(await causes({ name: 'count', expression: 'size(object.spec.containers)' })).toContain('must evaluate to bool but got int');
    expect(await causes({ name: 'ok', expression: 'true' }, { name: 'ok', expression: 'false' })).toContain('webhooks[0].matchConditions[1].name: Duplicate value: "ok"');
    expect(await causes({ name: 'Not A Name!', expression: 'true' })).toContain('webhooks[0].matchConditions[0].name: Invalid value: "Not A Name!"');
    expect(await causes({ name: '', expression: '  ' })).toMatch(/matchConditions\[0\]\.expression: Required value.*matchConditions\[0\]\.name: Required value/);
    expect(emu.mutatingWebhookConfigurations()).toHaveLength(0);
  });
});

describe('the ServiceAccount admission plugin', () => {
  const tokenVolume = /^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/;
  const tokenVolumes = (pod: V1Pod): V1Volume[] => (pod.spec?.volumes ?? []).filter((v) => v.name.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX));
  const withSpec = (name: string, spec: Partial<V1PodSpec>): V1Pod => ({ ...newPod(name), spec: { ...newPod(name).spec!, ...spec } });

  afterEach(async () => {
    for (const sa of (await core.listNamespacedServiceAccount({ namespace: 'default' })).items) {
      await core.deleteNamespacedServiceAccount({ namespace: 'default', name: sa.metadata?.name ?? '' });
    }
  });

  it('mounts a kube-api-access projected volume read-only in every container and init container of a pod of the default ServiceAccount', async () => {
    const created = await core.createNamespacedPod({
      namespace: 'default',
      body: withSpec('token', { initContainers: [{ name: 'init', image: 'busybox:1.36' }], containers: [{ name: 'app', image: 'busybox:1.36' }, { name: 'second', image: 'busybox:1.36' }] }),
    });
    expect(created.spec?.serviceAccountName).toBe('default');
    const [volume, ...others] = tokenVolumes(created);
    expect(others).toEqual([]);
    expect(volume?.name).toMatch(tokenVolume);
    expect(volume?.projected).toEqual({
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    });
    for (const c of [...(created.spec?.initContainers ?? []), ...(created.spec?.containers ?? [])]) {
      expect([c.name, c.volumeMounts]).toEqual([c.name, [{ name: volume?.name, mountPath: SERVICE_ACCOUNT_MOUNT_PATH, readOnly: true }]]);
    }
  });

  it('adds nothing when the pod sets automountServiceAccountToken: false', async () => {
    const created = await core.createNamespacedPod({ namespace: 'default', body: withSpec('no-token', { automountServiceAccountToken: false }) });
    expect(created.spec?.volumes ?? []).toEqual([]);
    expect(created.spec?.containers[0]?.volumeMounts).toBeUndefined();
  });

  it('follows the ServiceAccount\'s automountServiceAccountToken when the pod leaves it unset; the pod\'s own setting wins', async () => {
    const sa = await core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'quiet' }, automountServiceAccountToken: false } });
    expect(sa.metadata?.uid).toBeTruthy();
    expect((await core.readNamespacedServiceAccount({ namespace: 'default', name: 'quiet' })).automountServiceAccountToken).toBe(false);
    const unset = await core.createNamespacedPod({ namespace: 'default', body: withSpec('quiet-unset', { serviceAccountName: 'quiet' }) });
    expect(tokenVolumes(unset)).toEqual([]);
    const opted = await core.createNamespacedPod({ namespace: 'default', body: withSpec('quiet-opted', { serviceAccountName: 'quiet', automountServiceAccountToken: true }) });
    expect(tokenVolumes(opted)).toHaveLength(1);
  });

  it('leaves a container that already mounts something at the token path with its own mount', async () => {
    const ownMount = { name: 'my-token', mountPath: SERVICE_ACCOUNT_MOUNT_PATH, readOnly: true };
    const created = await core.createNamespacedPod({
      namespace: 'default',
      body: withSpec('own-token', {
        containers: [{ name: 'app', image: 'busybox:1.36', volumeMounts: [ownMount] }, { name: 'other', image: 'busybox:1.36' }],
        volumes: [{ name: 'my-token', projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'vault' } }] } }],
      }),
    });
    expect(created.spec?.containers[0]?.volumeMounts).toEqual([ownMount]);
    const [volume] = tokenVolumes(created);
    expect(created.spec?.containers[1]?.volumeMounts).toEqual([{ name: volume?.name, mountPath: SERVICE_ACCOUNT_MOUNT_PATH, readOnly: true }]);
    expect(created.spec?.volumes?.map((v) => v.name)).toEqual(['my-token', volume?.name]);
  });

  it('refuses a pod whose ServiceAccount does not exist with 403; copies the ServiceAccount\'s imagePullSecrets to a pod without any', async () => {
    const r = await refusal(core.createNamespacedPod({ namespace: 'default', body: withSpec('orphan', { serviceAccountName: 'nobody' }) }));
    expect(r).toMatchObject({ code: 403, reason: 'Forbidden', message: 'pods "orphan" is forbidden: error looking up service account default/nobody: serviceaccount "nobody" not found' });
    const generated = await refusal(core.createNamespacedPod({ namespace: 'default', body: { ...withSpec('', { serviceAccountName: 'nobody' }), metadata: { generateName: 'orphan-' } } }));
    expect(generated.message).toMatch(/^pods "orphan-" is forbidden: /);
    await core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'puller' }, imagePullSecrets: [{ name: 'registry' }] } });
    const pulling = await core.createNamespacedPod({ namespace: 'default', body: withSpec('pulling', { serviceAccountName: 'puller' }) });
    expect(pulling.spec?.imagePullSecrets).toEqual([{ name: 'registry' }]);
    const own = await core.createNamespacedPod({ namespace: 'default', body: withSpec('own-secrets', { serviceAccountName: 'puller', imagePullSecrets: [{ name: 'mine' }] }) });
    expect(own.spec?.imagePullSecrets).toEqual([{ name: 'mine' }]);
  });

  it('runs before the webhooks: a webhook sees the pod with its kube-api-access volume', async () => {
    const hook = await testWebhook('label', () => ({ allowed: true }));
    await register('a', webhookEntry('label', { matchConditions: [{ name: 'has-token', expression: "object.spec.volumes.exists(v, v.name.startsWith('kube-api-access-'))" }] }));
    const created = await core.createNamespacedPod({ namespace: 'default', body: newPod('seen') });
    const [request] = hook.requests;
    expect(request?.object.spec?.volumes?.map((v) => v.name)).toEqual(tokenVolumes(created).map((v) => v.name));
    expect(request?.object.spec?.containers[0]?.volumeMounts?.[0]?.mountPath).toBe(SERVICE_ACCOUNT_MOUNT_PATH);
  });

  it('is off in an emulator started with serviceAccountAdmission: false', async () => {
    const bare = await ApiEmulator.start({ serviceAccountAdmission: false });
    try {
      const created = await bare.kubeConfig().makeApiClient(CoreV1Api).createNamespacedPod({ namespace: 'default', body: withSpec('plain', { serviceAccountName: 'nobody' }) });
      expect(created.spec?.volumes).toBeUndefined();
    } finally {
      await bare.close();
    }
  });
});

describe('with the real zkleader webhook and the configuration from deploy/', () => {
  let webhook: WebhookProcess | undefined;
  afterAll(async () => {
    await webhook?.stop();
  });

  it('injects an opted-in pod, denies a bad annotation with its message, and passes warnings on', async () => {
    const config = deployedWebhookConfiguration('');
    const service = deployedWebhookService(config);
    webhook = await startWebhookProcess({ ...service, config: { zookeeper: '127.0.0.1:2181', sidecarMode: 'native' } });
    const baseUrl = webhook.baseUrl;
    const local = await ApiEmulator.start();
    try {
      local.useWebhookAdmission({
        serviceResolver: (ns, name) => {
          if (ns !== service.namespace || name !== service.service) throw new Error(`unexpected service ${ns}/${name}`);
          return baseUrl;
        },
        log: pino({ level: 'silent' }),
      });
      const kc = local.kubeConfig();
      await kc.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({ body: deployedWebhookConfiguration(webhook.caBundle) });
      const api = kc.makeApiClient(CoreV1Api);
      const pod = (labels: Record<string, string>, annotations: Record<string, string>): V1Pod => ({
        metadata: { generateName: 'orders-', labels: { app: 'orders', ...labels }, annotations },
        spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] },
      });
      const injected = await api.createNamespacedPodWithHttpInfo({ namespace: 'shop', body: pod({ 'zkleader.io/inject': 'true' }, { 'zkleader.io/colour': 'blue' }) });
      expect(injected.data.spec?.initContainers?.map((c) => c.name)).toEqual(['zkleader']);
      expect(injected.data.metadata?.labels).toMatchObject({ 'zkleader.io/role': 'follower', 'zkleader.io/election': 'orders' });
      expect(injected.headers.warning).toContain('zkleader.io/colour');
      const refused = await refusal(api.createNamespacedPod({ namespace: 'shop', body: pod({ 'zkleader.io/inject': 'true' }, { 'zkleader.io/session-timeout': '1s' }) }));
      expect(refused.code).toBe(400);
      expect(refused.message).toMatch(/^admission webhook "inject.zkleader.io" denied the request: zkleader: .*zkleader.io\/session-timeout/);
      // The webhook's own namespace is excluded by the namespaceSelector.
      const own = await api.createNamespacedPod({ namespace: service.namespace, body: pod({ 'zkleader.io/inject': 'true' }, {}) });
      expect(own.spec?.initContainers).toBeUndefined();
    } finally {
      await local.close();
    }
  });
});
