import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1ValidatingAdmissionPolicy,
  type V1ValidatingAdmissionPolicyBinding,
  type V1ValidatingAdmissionPolicySpec,
  type V1ValidatingAdmissionPolicyBindingSpec,
} from '@kubernetes/client-node';
import { ApiEmulator } from '../support/apiEmulator/index.js';

// The ValidatingAdmissionPolicy plugin of the API emulator, driven through the real
// @kubernetes/client-node: policies and bindings stored like other objects, evaluated on
// every write after the object's own validation, answered as kube-apiserver answers.

let emu: ApiEmulator;
let core: CoreV1Api;
let admission: AdmissionregistrationV1Api;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

beforeAll(async () => {
  emu = await ApiEmulator.start();
  core = emu.kubeConfig().makeApiClient(CoreV1Api);
  admission = emu.kubeConfig().makeApiClient(AdmissionregistrationV1Api);
});

afterAll(async () => {
  await emu?.close();
});

afterEach(async () => {
  for (const b of (await admission.listValidatingAdmissionPolicyBinding()).items) await admission.deleteValidatingAdmissionPolicyBinding({ name: b.metadata?.name ?? '' });
  for (const p of (await admission.listValidatingAdmissionPolicy()).items) await admission.deleteValidatingAdmissionPolicy({ name: p.metadata?.name ?? '' });
  for (const p of emu.listPods()) await core.deleteNamespacedPod({ name: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? '' });
});

const podRules = (operations: string[] = ['UPDATE']) => ({ resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations, resources: ['pods'] }] });

/** A policy and its binding (same name), as an administrator creates them. */
async function install(name: string, spec: Partial<V1ValidatingAdmissionPolicySpec>, binding: Partial<V1ValidatingAdmissionPolicyBindingSpec> = {}): Promise<V1ValidatingAdmissionPolicy> {
  const created = await admission.createValidatingAdmissionPolicy({ body: { metadata: { name }, spec: { matchConstraints: podRules(), ...spec } } });
  await admission.createValidatingAdmissionPolicyBinding({ body: { metadata: { name }, spec: { policyName: name, validationActions: ['Deny'], ...binding } } });
  return created;
}

function pod(name: string, labels: Record<string, string> = {}, namespace = 'shop'): V1Pod {
  return { metadata: { name, namespace, labels: { app: 'orders', ...labels } }, spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] } };
}

async function createPod(p: V1Pod): Promise<V1Pod> {
  return core.createNamespacedPod({ namespace: p.metadata?.namespace ?? 'shop', body: p });
}

function label(name: string, labels: Record<string, string | null>, client: CoreV1Api = core, namespace = 'shop'): Promise<V1Pod> {
  return client.patchNamespacedPod({ name, namespace, body: { metadata: { labels } } }, mergePatch);
}

interface Refusal {
  code: number;
  status: { message: string; reason: string; details?: { name?: string; kind?: string; causes?: { message: string }[] } };
}

async function refusal(promise: Promise<unknown>): Promise<Refusal> {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    return { code: err.code, status: JSON.parse(err.body as string) as Refusal['status'] };
  }
  throw new Error('expected the API to refuse the request');
}

/** The Warning headers of a raw PATCH (client-node does not surface them). */
async function patchWithWarnings(name: string, body: object): Promise<{ status: number; warnings: string | null }> {
  const res = await fetch(`${emu.url}/api/v1/namespaces/shop/pods/${name}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify(body),
  });
  await res.text();
  return { status: res.status, warnings: res.headers.get('warning') };
}

const tierFixed = { validations: [{ expression: "object.metadata.labels['tier'] == oldObject.metadata.labels['tier']", message: 'the label tier is fixed' }] };

describe('policies and bindings as objects', () => {
  it('are stored with the defaults the apiserver fills in, listed and deleted', async () => {
    const created = await install('fixed-tier', tierFixed);
    expect(created.spec?.failurePolicy).toBe('Fail');
    expect(created.spec?.matchConstraints).toMatchObject({ matchPolicy: 'Equivalent', namespaceSelector: {}, objectSelector: {}, resourceRules: [{ scope: '*' }] });
    expect((await admission.listValidatingAdmissionPolicy()).items.map((p) => p.metadata?.name)).toEqual(['fixed-tier']);
    expect((await admission.readValidatingAdmissionPolicyBinding({ name: 'fixed-tier' })).spec?.validationActions).toEqual(['Deny']);
  });

  it.each<[string, Partial<V1ValidatingAdmissionPolicySpec>, string]>([
    ['CEL that does not compile', { validations: [{ expression: 'object.metadata.name ==' }] }, 'spec.validations[0].expression: Invalid value: "object.metadata.name ==": compilation failed'],
    ['an undeclared variable', { validations: [{ expression: 'variables.nope' }] }, "spec.validations[0].expression: Invalid value: \"variables.nope\": compilation failed: ERROR: <input>: undefined field 'nope'"],
    ['a variable that names a later one', { variables: [{ name: 'a', expression: 'variables.b' }, { name: 'b', expression: 'true' }], validations: [{ expression: 'variables.a' }] }, "spec.variables[0].expression"],
    ['a validation that cannot be a bool', { validations: [{ expression: "'yes'" }] }, 'must evaluate to bool but got string'],
    ['a matchCondition that names variables', { matchConditions: [{ name: 'x', expression: 'variables.a' }], variables: [{ name: 'a', expression: 'true' }], validations: [{ expression: 'true' }] }, "undeclared reference to 'variables'"],
    ['no validations', { validations: [] }, 'spec.validations: Required value: validations or auditAnnotations must contain at least one item'],
    ['no resource rules', { matchConstraints: {}, validations: [{ expression: 'true' }] }, 'spec.matchConstraints.resourceRules: Required value'],
  ])('refuses a policy with %s (422, naming the field)', async (_what, spec, expected) => {
    const r = await refusal(admission.createValidatingAdmissionPolicy({ body: { metadata: { name: 'bad' }, spec: { matchConstraints: podRules(), ...spec } } }));
    expect(r.code).toBe(422);
    expect(r.status.message).toContain('ValidatingAdmissionPolicy.admissionregistration.k8s.io "bad" is invalid: ');
    expect(r.status.message).toContain(expected);
  });

  it('refuses a binding without a policy name, or with both Deny and Warn', async () => {
    const r1 = await refusal(admission.createValidatingAdmissionPolicyBinding({ body: { metadata: { name: 'b' }, spec: { validationActions: ['Deny'] } } as V1ValidatingAdmissionPolicyBinding }));
    expect([r1.code, r1.status.message]).toEqual([422, 'ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io "b" is invalid: spec.policyName: Required value']);
    const r2 = await refusal(admission.createValidatingAdmissionPolicyBinding({ body: { metadata: { name: 'b' }, spec: { policyName: 'p', validationActions: ['Deny', 'Warn'] } } }));
    expect(r2.status.message).toContain('spec.validationActions: Invalid value: ["Deny","Warn"]: must not contain both Deny and Warn');
  });
});

describe('a denial', () => {
  it("is the apiserver's Status: 422 Invalid, forbidden naming the policy and binding, the message as its cause; nothing is stored", async () => {
    await createPod(pod('p1', { tier: 'web' }));
    await install('fixed-tier', tierFixed);
    const r = await refusal(label('p1', { tier: 'db' }));
    const message = "ValidatingAdmissionPolicy 'fixed-tier' with binding 'fixed-tier' denied request: the label tier is fixed";
    expect(r.code).toBe(422);
    expect(r.status).toMatchObject({ message: `pods "p1" is forbidden: ${message}`, reason: 'Invalid', details: { name: 'p1', kind: 'pods', causes: [{ message }] } });
    expect(emu.getPod('shop', 'p1')?.metadata?.labels?.tier).toBe('web');
    // The patched object is what the policy sees: another label passes.
    expect((await label('p1', { other: 'x' })).metadata?.labels).toMatchObject({ tier: 'web', other: 'x' });
  });

  it('is 403 Forbidden when the validation says so', async () => {
    await createPod(pod('p1', { tier: 'web' }));
    await install('fixed-tier', { validations: [{ ...tierFixed.validations[0]!, reason: 'Forbidden' }] });
    const r = await refusal(label('p1', { tier: 'db' }));
    expect([r.code, r.status.reason]).toEqual([403, 'Forbidden']);
  });

  it('words its message from messageExpression, else message, else the expression', async () => {
    await createPod(pod('p1', { tier: 'web' }));
    await install('m', {
      validations: [
        { expression: 'false', messageExpression: "'no change to ' + object.metadata.name + ' by ' + request.userInfo.username", message: 'unused' },
        { expression: 'false', messageExpression: "''", message: 'fallback message' },
      ],
    });
    const first = await refusal(label('p1', { tier: 'db' }));
    expect(first.status.message).toMatch(/denied request: no change to p1 by system:serviceaccount:default:default$/);
    await admission.patchValidatingAdmissionPolicy({ name: 'm', body: [{ op: 'remove', path: '/spec/validations/0' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    expect((await refusal(label('p1', { tier: 'db' }))).status.message).toMatch(/denied request: fallback message$/);
    await admission.patchValidatingAdmissionPolicy({ name: 'm', body: { spec: { validations: [{ expression: "object.metadata.name != 'p1'" }] } } }, mergePatch);
    expect((await refusal(label('p1', { tier: 'db' }))).status.message).toMatch(/denied request: failed expression: object\.metadata\.name != 'p1'$/);
  });

  it('also refuses a dry run, and a write that changes nothing', async () => {
    await createPod(pod('p1', { tier: 'web' }));
    await install('frozen', { validations: [{ expression: 'false', message: 'frozen' }] });
    expect((await refusal(core.patchNamespacedPod({ name: 'p1', namespace: 'shop', body: { metadata: { labels: { tier: 'db' } } }, dryRun: 'All' }, mergePatch))).code).toBe(422);
    expect((await refusal(label('p1', { tier: 'web' }))).status.message).toContain('denied request: frozen');
  });
});

describe('what a policy sees', () => {
  it('object after the patch, oldObject as stored, and the request: operation, options (PUT or PATCH), namespace, name, userInfo of the requester', async () => {
    await createPod(pod('p1', { tier: 'web' }));
    await install('echo', {
      validations: [
        {
          expression: 'false',
          messageExpression:
            "[request.operation, request.options.kind, request.namespace, request.name, request.kind.kind, request.resource.resource, oldObject.metadata.labels['tier'], object.metadata.labels['tier'], request.userInfo.username, request.userInfo.groups.join('+'), has(request.userInfo.extra) ? 'extra' : 'no-extra'].join(' ')",
        },
      ],
    });
    const patched = await refusal(label('p1', { tier: 'db' }));
    expect(patched.status.message).toMatch(/denied request: UPDATE PatchOptions shop p1 Pod pods web db system:serviceaccount:default:default system:authenticated no-extra$/);
    const current = (await core.readNamespacedPod({ name: 'p1', namespace: 'shop' })) as V1Pod;
    const replaced = await refusal(core.replaceNamespacedPod({ name: 'p1', namespace: 'shop', body: { ...current, metadata: { ...current.metadata, labels: { ...current.metadata?.labels, tier: 'cache' } } } }));
    expect(replaced.status.message).toMatch(/denied request: UPDATE UpdateOptions shop p1 Pod pods web cache /);

    // A token bound to a pod: the service account, its groups, and the pod claims.
    emu.putServiceAccount({ metadata: { name: 'orders', namespace: 'shop' } });
    await createPod({ ...pod('p2'), spec: { ...pod('p2').spec!, serviceAccountName: 'orders' } });
    await admission.patchValidatingAdmissionPolicy(
      { name: 'echo', body: { spec: { validations: [{ expression: 'false', messageExpression: "request.userInfo.username + ' ' + request.userInfo.groups.join('+') + ' ' + request.userInfo.extra['authentication.kubernetes.io/pod-name'][0] + ' ' + request.userInfo.extra['authentication.kubernetes.io/pod-uid'][0]" }] } } },
      mergePatch,
    );
    const asPod = emu.kubeConfig(emu.serviceAccountToken('shop', 'orders', { pod: 'p2' })).makeApiClient(CoreV1Api);
    const byPod = await refusal(label('p1', { tier: 'db' }, asPod));
    expect(byPod.status.message).toMatch(
      new RegExp(`denied request: system:serviceaccount:shop:orders system:serviceaccounts\\+system:serviceaccounts:shop\\+system:authenticated p2 ${emu.getPod('shop', 'p2')?.metadata?.uid ?? 'x'}$`),
    );
  });

  it('variables, evaluated when an expression names them; one that fails fails only the expressions that use it', async () => {
    await createPod(pod('p1'));
    await install('vars', {
      variables: [
        { name: 'tier', expression: "object.metadata.labels['tier']" },
        { name: 'app', expression: "object.metadata.labels['app']" },
        { name: 'appAgain', expression: 'variables.app' },
      ],
      validations: [{ expression: "variables.appAgain == 'orders'", message: 'app must be orders' }],
    });
    // `tier` would fail (no such label) but no validation names it.
    expect((await label('p1', { x: '1' })).metadata?.labels?.x).toBe('1');
    await admission.patchValidatingAdmissionPolicy({ name: 'vars', body: { spec: { validations: [{ expression: "variables.tier == 'web'", message: 'tier' }] } } }, mergePatch);
    const r = await refusal(label('p1', { x: '2' }));
    expect(r.status.message).toContain('denied request: expression \'variables.tier == \'web\'\' resulted in error: composited variable "tier" fails to evaluate: ');
    expect(r.status.message).toContain('no such key: tier');
  });
});

describe('matching', () => {
  it('applies only to the operations and resources of its rules: not the status subresource, not CREATE when it names UPDATE', async () => {
    await install('frozen', { validations: [{ expression: 'false', message: 'frozen' }] });
    await createPod(pod('p1'));
    await core.patchNamespacedPodStatus({ name: 'p1', namespace: 'shop', body: { status: { phase: 'Running' } } }, mergePatch);
    expect((await refusal(label('p1', { x: '1' }))).code).toBe(422);
  });

  it('checks CREATE and DELETE when its rules name them (object null on DELETE)', async () => {
    await install('no-db', {
      matchConstraints: podRules(['CREATE', 'DELETE']),
      validations: [{ expression: "object == null ? oldObject.metadata.name != 'keep' : !('tier' in object.metadata.labels) || object.metadata.labels['tier'] != 'db'", message: 'refused' }],
    });
    expect((await refusal(createPod(pod('p1', { tier: 'db' })))).status.message).toBe("pods \"p1\" is forbidden: ValidatingAdmissionPolicy 'no-db' with binding 'no-db' denied request: refused");
    expect(emu.getPod('shop', 'p1')).toBeUndefined();
    await createPod(pod('keep'));
    expect((await refusal(core.deleteNamespacedPod({ name: 'keep', namespace: 'shop' }))).code).toBe(422);
    expect(emu.getPod('shop', 'keep')).toBeDefined();
    await admission.deleteValidatingAdmissionPolicyBinding({ name: 'no-db' });
  });

  it('resourceNames, excludeResourceRules, and the object selector matching the object or the old object', async () => {
    await createPod(pod('named'));
    await createPod(pod('other'));
    await createPod(pod('excluded'));
    await install('rules', {
      matchConstraints: {
        resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods'], resourceNames: ['named', 'excluded'] }],
        excludeResourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods'], resourceNames: ['excluded'] }],
        objectSelector: { matchLabels: { guarded: 'yes' } },
      },
      validations: [{ expression: 'false', message: 'guarded' }],
    });
    // Neither object carries the label: not matched.
    await label('named', { x: '1' });
    // The new object carries it: matched.
    expect((await refusal(label('named', { guarded: 'yes' }))).code).toBe(422);
    await label('other', { guarded: 'yes' });
    await label('excluded', { guarded: 'yes' });
    // The old object carries it: matched, so the label cannot be taken off to escape.
    emu.putPod({ ...pod('named', { guarded: 'yes' }) });
    expect((await refusal(label('named', { guarded: null }))).code).toBe(422);
  });

  it('the namespace selector, on the labels of the namespace', async () => {
    await core.createNamespace({ body: { metadata: { name: 'prod', labels: { env: 'prod' } } } });
    await createPod(pod('p1', {}, 'prod'));
    await createPod(pod('p1'));
    await install('prod-only', { matchConstraints: { ...podRules(), namespaceSelector: { matchLabels: { env: 'prod' } } }, validations: [{ expression: 'false', message: 'prod is frozen' }] });
    await label('p1', { x: '1' });
    expect((await refusal(label('p1', { x: '1' }, core, 'prod'))).status.message).toContain('prod is frozen');
  });

  it("a binding's matchResources narrows its policy, and a binding to a missing policy does nothing", async () => {
    await createPod(pod('p1', { team: 'a' }));
    await createPod(pod('p2', { team: 'b' }));
    await install('team-a', { validations: [{ expression: 'false', message: 'team a is frozen' }] }, { matchResources: { objectSelector: { matchLabels: { team: 'a' } } } });
    await admission.createValidatingAdmissionPolicyBinding({ body: { metadata: { name: 'orphan' }, spec: { policyName: 'missing', validationActions: ['Deny'] } } });
    await label('p2', { x: '1' });
    expect((await refusal(label('p1', { x: '1' }))).status.message).toContain('team a is frozen');
  });
});

describe('exempt resources', () => {
  // kube-apiserver applies no policy to writes of the admission policies and their bindings
  // (validating and mutating), whatever the rules say; webhook configurations are exempt
  // from webhooks, not from policies (see policyExemptResources in the plugin).
  const frozenAdmission = {
    matchConstraints: { resourceRules: [{ apiGroups: ['admissionregistration.k8s.io'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['*'] }] },
    validations: [{ expression: 'false', message: 'admission configuration is frozen' }],
  };

  it('a policy matching every admissionregistration.k8s.io resource never applies to policies and bindings, but does to a webhook configuration', async () => {
    const webhook = {
      name: 'inject.example.com',
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      clientConfig: { service: { name: 'hook', namespace: 'hooks', path: '/mutate' } },
      rules: [{ operations: ['CREATE'], apiGroups: ['example.com'], apiVersions: ['v1'], resources: ['widgets'] }],
    };
    await admission.createMutatingWebhookConfiguration({ body: { metadata: { name: 'hook' }, webhooks: [webhook] } });
    try {
      await install('frozen-admission', frozenAdmission);
      // Policies and bindings: created and updated although the rules match them.
      await install('another', { validations: [{ expression: 'true' }] });
      expect((await admission.patchValidatingAdmissionPolicy({ name: 'frozen-admission', body: { metadata: { labels: { x: '1' } } } }, mergePatch)).metadata?.labels).toEqual({ x: '1' });
      expect((await admission.patchValidatingAdmissionPolicyBinding({ name: 'frozen-admission', body: { metadata: { labels: { x: '1' } } } }, mergePatch)).metadata?.labels).toEqual({ x: '1' });
      // The webhook configuration: refused, as kube-apiserver refuses it.
      const r = await refusal(admission.patchMutatingWebhookConfiguration({ name: 'hook', body: { metadata: { labels: { x: '1' } } } }, mergePatch));
      expect([r.code, r.status.message]).toEqual([
        422,
        "mutatingwebhookconfigurations.admissionregistration.k8s.io \"hook\" is forbidden: ValidatingAdmissionPolicy 'frozen-admission' with binding 'frozen-admission' denied request: admission configuration is frozen",
      ]);
      expect((await admission.readMutatingWebhookConfiguration({ name: 'hook' })).metadata?.labels).toBeUndefined();
    } finally {
      // DELETE is not in the policy's rules.
      await admission.deleteMutatingWebhookConfiguration({ name: 'hook' });
    }
  });
});

describe('matchConditions and failurePolicy', () => {
  it('a false condition skips the policy; an error denies under Fail and is ignored under Ignore', async () => {
    await createPod(pod('p1', { tier: 'web' }));
    await createPod(pod('p2'));
    const policy = (failurePolicy: 'Fail' | 'Ignore') => ({
      failurePolicy,
      matchConditions: [{ name: 'web-tier', expression: "object.metadata.labels['tier'] == 'web'" }],
      validations: [{ expression: 'false', message: 'web pods are frozen' }],
    });
    await install('web', policy('Fail'));
    expect((await refusal(label('p1', { x: '1' }))).status.message).toContain('web pods are frozen');
    // Moved out of the web tier by the patch: the condition is false on the patched object.
    expect((await label('p1', { tier: 'db' })).metadata?.labels?.tier).toBe('db');
    // p2 has no tier label: the condition errs (no such key).
    const r = await refusal(label('p2', { x: '1' }));
    expect([r.code, r.status.message]).toEqual([
      422,
      "pods \"p2\" is forbidden: ValidatingAdmissionPolicy 'web' with binding 'web' denied request: expression 'object.metadata.labels['tier'] == 'web'' resulted in error: no such key: tier",
    ]);
    await admission.patchValidatingAdmissionPolicy({ name: 'web', body: { spec: { failurePolicy: 'Ignore' } } }, mergePatch);
    expect((await label('p2', { x: '1' })).metadata?.labels?.x).toBe('1');
  });

  it('an error in a validation follows the failurePolicy too', async () => {
    await createPod(pod('p1'));
    await install('strict', { validations: [{ expression: "object.metadata.labels['tier'] == 'web'", message: 'tier must be web' }] });
    expect((await refusal(label('p1', { x: '1' }))).status.message).toContain("expression 'object.metadata.labels['tier'] == 'web'' resulted in error: no such key: tier");
    await admission.patchValidatingAdmissionPolicy({ name: 'strict', body: { spec: { failurePolicy: 'Ignore' } } }, mergePatch);
    expect((await label('p1', { x: '2' })).metadata?.labels?.x).toBe('2');
  });
});

describe('validationActions', () => {
  it('Warn lets the request through with a Warning header naming the policy and binding', async () => {
    await createPod(pod('p1'));
    await install('advice', { validations: [{ expression: "!('x' in object.metadata.labels)", message: 'x is deprecated' }] }, { validationActions: ['Warn'] });
    const res = await patchWithWarnings('p1', { metadata: { labels: { x: '1' } } });
    expect(res).toEqual({ status: 200, warnings: `299 - "Validation failed for ValidatingAdmissionPolicy 'advice' with binding 'advice': x is deprecated"` });
    expect(emu.getPod('shop', 'p1')?.metadata?.labels?.x).toBe('1');
  });

  it('the first denial of several bindings is the answer', async () => {
    await createPod(pod('p1'));
    await install('a-first', { validations: [{ expression: 'false', message: 'first' }] });
    await install('b-second', { validations: [{ expression: 'false', message: 'second' }] });
    expect((await refusal(label('p1', { x: '1' }))).status.message).toContain("ValidatingAdmissionPolicy 'a-first' with binding 'a-first' denied request: first");
  });
});
