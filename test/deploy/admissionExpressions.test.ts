import { describe, expect, it } from '@jest/globals';
import type { V1MutatingWebhook, V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { join } from 'node:path';
import { caBundlePatch } from '../../certs/webhookCaBundle.js';
import { CelExpressionError, compileCel } from '../support/cel.js';
import { renderKustomization, type KubernetesObject } from '../support/kustomize.js';
import { repoRoot } from '../support/repoRoot.js';

// The CEL of deploy/, evaluated with a real CEL evaluator (the API server's own evaluation cannot run here).
const rendered = renderKustomization(join(repoRoot, 'deploy'));
function find<T>(kind: string, name?: string): T {
  const found = rendered.filter((o: KubernetesObject) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found.length).toBe(1);
  return found[0] as unknown as T;
}
const mwc = find<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration');

describe("the Ignore entry's matchConditions", () => {
  const entry = mwc.webhooks?.find((w) => w.failurePolicy === 'Ignore');
  const conditions = (entry?.matchConditions ?? []).map((c) => compileCel(c.expression, { returnType: 'bool' }));
  const sent = (metadata: Record<string, unknown>) => conditions.every((c) => c.evaluate({ object: { metadata }, oldObject: null, request: { operation: 'CREATE' } }) === true);

  it('sends pods with the annotation zkleader.io/inject, whatever its value (a typo is refused by the webhook, not ignored)', () => {
    expect(conditions.length).toBe(1);
    for (const value of ['true', 'false', 'yes']) expect([value, sent({ name: 'p', annotations: { 'zkleader.io/inject': value } })]).toEqual([value, true]);
  });

  it('keeps every other pod creation away from the webhook', () => {
    expect(sent({ name: 'p' })).toBe(false);
    expect(sent({ name: 'p', annotations: { 'zkleader.io/election': 'x' } })).toBe(false);
    expect(sent({ name: 'p', labels: { 'zkleader.io/inject': 'false' } })).toBe(false);
  });

  it('is on the Ignore entry only: the Fail entry selects its pods by label', () => {
    expect(mwc.webhooks?.find((w) => w.failurePolicy === 'Fail')?.matchConditions).toBeUndefined();
  });
});

interface Policy {
  spec: {
    failurePolicy: string;
    matchConstraints: { resourceRules: { apiGroups: string[]; operations: string[]; resources: string[] }[] };
    matchConditions: { expression: string }[];
    validations: { expression: string; message: string }[];
  };
}

describe('the certificates job may change only the caBundle (ValidatingAdmissionPolicy)', () => {
  const policy = find<Policy>('ValidatingAdmissionPolicy', 'zkleader-certs-cabundle-only');
  const binding = find<{ spec: { policyName: string; validationActions: string[] } }>('ValidatingAdmissionPolicyBinding', 'zkleader-certs-cabundle-only');
  const matches = policy.spec.matchConditions.map((c) => compileCel(c.expression, { returnType: 'bool' }));
  const validations = policy.spec.validations.map((v) => compileCel(v.expression, { returnType: 'bool' }));
  const certsUser = 'system:serviceaccount:zkleader-system:zkleader-certs';
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  /** The policy's verdict on an update from `before` to `after` by `username`: skipped, allowed or denied. */
  function verdict(before: V1MutatingWebhookConfiguration, after: V1MutatingWebhookConfiguration, username = certsUser): 'skipped' | 'allowed' | 'denied' {
    const bindings = { object: after, oldObject: before, request: { operation: 'UPDATE', userInfo: { username } } };
    if (!matches.every((m) => m.evaluate(bindings) === true)) return 'skipped';
    try {
      return validations.every((v) => v.evaluate(bindings) === true) ? 'allowed' : 'denied';
    } catch (err) {
      // failurePolicy Fail: an expression that errors denies.
      if (err instanceof CelExpressionError) return 'denied';
      throw err;
    }
  }
  const withCaBundle = (config: V1MutatingWebhookConfiguration, bundle: string) =>
    fastJsonPatch.applyPatch(structuredClone(config), caBundlePatch(config, bundle), true, false).newDocument;
  const edited = (edit: (w: V1MutatingWebhook[]) => void) => {
    const copy = structuredClone(mwc);
    edit(copy.webhooks ?? []);
    return copy;
  };

  it.each<[string, (m: V1MutatingWebhookConfiguration['metadata'] & object) => void]>([
    ['an owner reference (the garbage collector would delete the configuration)', (m) => {
      m.ownerReferences = [{ apiVersion: 'v1', kind: 'Namespace', name: 'gone', uid: '00000000-0000-0000-0000-000000000000' }];
    }],
    ['a finalizer (uninstall would hang)', (m) => { m.finalizers = ['example.com/hold']; }],
  ])('denies %s by the certificates job', (_change, edit) => {
    const before = withCaBundle(mwc, pem);
    const after = structuredClone(before);
    after.metadata ??= {};
    edit(after.metadata);
    expect(verdict(before, after)).toBe('denied');
    // An administrator's own labels and annotations are the administrator's business.
    const labelled = structuredClone(before);
    labelled.metadata = { ...labelled.metadata, labels: { ...labelled.metadata?.labels, team: 'platform' } };
    expect(verdict(before, labelled)).toBe('allowed');
  });

  it('names the certificates ServiceAccount as deployed (namespace and name)', () => {
    const sa = rendered.find((o) => o.kind === 'ServiceAccount' && o.metadata.name === 'zkleader-certs');
    const bindings = (username: string) => ({ object: mwc, oldObject: mwc, request: { operation: 'UPDATE', userInfo: { username } } });
    expect(matches.every((m) => m.evaluate(bindings(`system:serviceaccount:${sa?.metadata.namespace ?? ''}:${sa?.metadata.name ?? ''}`)) === true)).toBe(true);
  });

  it('binds the policy to deny, on updates of webhook configurations', () => {
    expect(binding.spec).toEqual({ policyName: (policy as unknown as KubernetesObject).metadata.name, validationActions: ['Deny'] });
    expect(policy.spec.failurePolicy).toBe('Fail');
    expect(policy.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ['admissionregistration.k8s.io'], apiVersions: ['*'], operations: ['UPDATE'], resources: ['mutatingwebhookconfigurations'] },
    ]);
  });

  it('allows what `zkleader certs` does: set the caBundle, then replace it', () => {
    const first = withCaBundle(mwc, pem);
    expect(first.webhooks?.every((w) => w.clientConfig.caBundle !== undefined)).toBe(true);
    expect(verdict(mwc, first)).toBe('allowed');
    expect(verdict(first, withCaBundle(first, pem.replace('MIIB', 'MIIC')))).toBe('allowed');
  });

  it.each<[string, (w: V1MutatingWebhook[]) => void]>([
    ['a URL instead of the Service', (w) => { w[0]!.clientConfig = { url: 'https://evil.example/mutate' }; }],
    ['another Service', (w) => { w[0]!.clientConfig.service!.name = 'evil'; }],
    ['another path', (w) => { w[1]!.clientConfig.service!.path = '/other'; }],
    ['failurePolicy', (w) => { w[1]!.failurePolicy = 'Fail'; }],
    ['wider rules', (w) => { w[0]!.rules![0]!.operations = ['CREATE', 'UPDATE']; }],
    ['resources', (w) => { w[0]!.rules![0]!.resources = ['*']; }],
    ['the objectSelector', (w) => { w[0]!.objectSelector = {}; }],
    ['the namespaceSelector', (w) => { w[1]!.namespaceSelector = {}; }],
    ['matchConditions removed', (w) => { delete w[1]!.matchConditions; }],
    ['matchConditions changed', (w) => { w[1]!.matchConditions = [{ name: 'all', expression: 'true' }]; }],
    ['timeoutSeconds', (w) => { w[0]!.timeoutSeconds = 30; }],
    ['matchPolicy', (w) => { w[0]!.matchPolicy = 'Exact'; }],
    ['sideEffects', (w) => { w[0]!.sideEffects = 'NoneOnDryRun'; }],
    ['reinvocationPolicy', (w) => { w[0]!.reinvocationPolicy = 'Never'; }],
    ['admissionReviewVersions', (w) => { w[0]!.admissionReviewVersions = ['v1', 'v1beta1']; }],
    ['an added entry', (w) => { w.push({ ...structuredClone(w[0]!), name: 'extra.zkleader.io' }); }],
    ['a removed entry', (w) => { w.pop(); }],
    ['a renamed entry', (w) => { w[1]!.name = 'renamed.zkleader.io'; }],
  ])('denies a change of %s by the certificates job, even with a new caBundle', (_change, edit) => {
    const before = withCaBundle(mwc, pem);
    const after = withCaBundle(edited(edit), pem.replace('MIIB', 'MIIC'));
    expect(verdict(before, after)).toBe('denied');
    // Anyone else (an administrator) is left to RBAC.
    expect(verdict(before, after, 'kubernetes-admin')).toBe('skipped');
  });
});
