import { describe, expect, it } from '@jest/globals';
import type { V1Container, V1EnvVar, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { parseFlags } from '../../../cli/flags.js';
import { sidecarFlags } from '../../../sidecar/sidecarFlags.js';
import { MAX_CONFIGS, parseConfigList } from '../../../src/annotations.js';
import { defaultInjectorConfig, type InjectorConfig } from '../../../src/config.js';
import { inject, type InjectResult } from '../../../src/inject.js';
import { injectDocuments } from '../../../src/injectDocuments.js';
import { diffPatch } from '../../../src/patch.js';
import { validatePod } from '../../support/apiEmulator/podValidation.js';

// zkleader.io/config (issue 13): the configs the sidecar keeps on disk; without
// zkleader.io/election the pod gets configuration only.

const config: InjectorConfig = { ...defaultInjectorConfig('1.2.3'), zookeeper: 'zk:2181' };
const optIn = { 'zkleader.io/inject': 'true' };
const FORM =
  `annotation zkleader.io/config: expected NAME[,NAME...]: 1 to ${MAX_CONFIGS} distinct config names, each a ConfigMap name ` +
  `(a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 characters)`;

function pod(annotations: Record<string, string>, labels: Record<string, string> | null = { app: 'web' }, spec: Partial<V1PodSpec> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-0', namespace: 'shop', ...(labels && { labels }), annotations: { ...optIn, ...annotations } },
    spec: { containers: [{ name: 'web', image: 'web:1' }], ...spec },
  };
}

function injected(result: InjectResult): V1Pod {
  if (result.kind !== 'injected') throw new Error(`expected an injection, got ${JSON.stringify(result)}`);
  expect(result.warnings).toEqual([]);
  return result.pod;
}

function refusal(result: InjectResult): string {
  if (result.kind !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  expect(result.code).toBe(400);
  return result.message;
}

function sidecarOf(output: V1Pod): V1Container {
  const sidecar = [...(output.spec?.initContainers ?? []), ...(output.spec?.containers ?? [])].find((c) => c.name === 'zkleader');
  if (!sidecar) throw new Error('no sidecar');
  return sidecar;
}

function envOf(output: V1Pod): Record<string, string | undefined> {
  return Object.fromEntries((sidecarOf(output).env ?? []).filter((e: V1EnvVar) => e.valueFrom === undefined).map((e) => [e.name, e.value]));
}

/** The flags the sidecar CLI reads from the injected container (the downward API stood in for). */
function sidecarCliFlags(output: V1Pod) {
  const downward: Record<string, string> = { 'metadata.name': 'web-0', 'metadata.namespace': 'shop', 'metadata.uid': 'uid-1', 'status.podIP': '10.0.1.7' };
  const env: NodeJS.ProcessEnv = {};
  const sidecar = sidecarOf(output);
  for (const e of sidecar.env ?? []) env[e.name] = e.value ?? downward[e.valueFrom?.fieldRef?.fieldPath ?? ''];
  return parseFlags(sidecarFlags, sidecar.args?.slice(1) ?? [], env).flags;
}

function asPod(output: V1Pod): unknown {
  return { ...output, metadata: { ...output.metadata, name: 'web-0', namespace: 'shop' } };
}

describe('zkleader.io/config without zkleader.io/election: configuration only', () => {
  const output = injected(inject(pod({ 'zkleader.io/config': 'pricing-rules, feature-flags' }, { app: 'web', 'app.kubernetes.io/name': 'web' }), config));

  it('gives the sidecar ZKLEADER_CONFIGS, no election (not even from the app labels) and ZKLEADER_NO_LABEL', () => {
    const env = envOf(output);
    expect(env.ZKLEADER_CONFIGS).toBe('pricing-rules,feature-flags');
    expect(env).not.toHaveProperty('ZKLEADER_ELECTION');
    expect(env.ZKLEADER_NO_LABEL).toBe('true');
    expect(sidecarOf(output).args).toEqual(['sidecar']);
  });

  it('adds neither zkleader.io/role nor zkleader.io/election: no leader-only Service can select the pod', () => {
    expect(output.metadata?.labels).toEqual({ app: 'web', 'app.kubernetes.io/name': 'web' });
    const patch = diffPatch(pod({ 'zkleader.io/config': 'pricing-rules, feature-flags' }, { app: 'web', 'app.kubernetes.io/name': 'web' }), output);
    expect(patch.filter((op) => op.path.startsWith('/metadata/labels'))).toEqual([]);
  });

  it('gives the sidecar no API access: an empty directory where the token would be, as with zkleader.io/label "false"', () => {
    const token = output.spec?.volumes?.find((v) => v.name === 'zkleader-token');
    expect(token).toEqual({ name: 'zkleader-token', emptyDir: { medium: 'Memory', sizeLimit: '1Ki' } });
    expect(JSON.stringify(output.spec?.volumes)).not.toContain('serviceAccountToken');
    expect(sidecarOf(output).volumeMounts).toContainEqual({ name: 'zkleader-token', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
  });

  it('holds the app back with the native sidecar\'s startupProbe on /readyz', () => {
    expect(sidecarOf(output)).toMatchObject({ restartPolicy: 'Always', startupProbe: { httpGet: { path: '/readyz', port: 4040 } } });
    expect(output.spec?.initContainers?.map((c) => c.name)).toEqual(['zkleader']);
  });

  it('gives the shared volume room for two versions of each config beside the leader files\' 1Mi', () => {
    expect(output.spec?.volumes?.find((v) => v.name === 'zkleader')?.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '5Mi' });
    const one = injected(inject(pod({ 'zkleader.io/config': 'a' }), config));
    expect(one.spec?.volumes?.find((v) => v.name === 'zkleader')?.emptyDir?.sizeLimit).toBe('3Mi');
    const none = injected(inject(pod({}), config));
    expect(none.spec?.volumes?.find((v) => v.name === 'zkleader')?.emptyDir?.sizeLimit).toBe('1Mi');
  });

  it('is what the sidecar CLI reads: --configs, no --election, --no-label', () => {
    const flags = sidecarCliFlags(output) as Record<string, unknown>;
    expect(flags.election).toBeUndefined();
    expect(flags['no-label']).toBe(true);
    expect(flags.configs).toEqual(['pricing-rules', 'feature-flags']);
  });

  it('passes the API server pod validation', () => {
    expect(validatePod(asPod(output))).toEqual([]);
  });

  it('ignores app labels that could not name an election (none is wanted)', () => {
    const result = injected(inject(pod({ 'zkleader.io/config': 'settings' }, { app: 'Web_App' }), config));
    expect(envOf(result)).not.toHaveProperty('ZKLEADER_ELECTION');
    expect(result.metadata?.labels).toEqual({ app: 'Web_App' });
  });

  it('gives a pod without labels none (no empty map), also when a container is added on reinvocation', () => {
    const input = pod({ 'zkleader.io/config': 'settings' }, null);
    const first = injected(inject(input, config));
    expect(first.metadata).not.toHaveProperty('labels');
    expect(diffPatch(input, first).map((op) => op.path)).not.toContain('/metadata/labels');
    expect(validatePod(asPod(first))).toEqual([]);
    expect(inject(first, config)).toEqual({ kind: 'skipped', reason: 'already-injected', warnings: [] });
    const grown: V1Pod = { ...first, spec: { ...(first.spec as V1PodSpec), containers: [...(first.spec?.containers ?? []), { name: 'late', image: 'late:1' }] } };
    const topped = injected(inject(grown, config));
    expect(topped.metadata).not.toHaveProperty('labels');
    expect(topped.spec?.containers.find((c) => c.name === 'late')?.volumeMounts).toEqual([{ name: 'zkleader', mountPath: '/var/run/zkleader', readOnly: true }]);
  });

  it('still demotes a role label copied from a leader (a Service selecting it must not route to this pod)', () => {
    const result = injected(inject(pod({ 'zkleader.io/config': 'settings', 'zkleader.io/leader-epoch': '4' }, { app: 'web', 'zkleader.io/role': 'leader' }), config));
    expect(result.metadata?.labels).toEqual({ app: 'web', 'zkleader.io/role': 'follower' });
    expect(result.metadata?.annotations).not.toHaveProperty('zkleader.io/leader-epoch');
  });

  it('takes zkleader.io/label "false" as what it already is', () => {
    const plain = injected(inject(pod({ 'zkleader.io/config': 'settings' }), config));
    const labelOff = injected(inject(pod({ 'zkleader.io/config': 'settings', 'zkleader.io/label': 'false' }), config));
    expect(labelOff.spec).toEqual(plain.spec);
    expect(labelOff.metadata?.labels).toEqual(plain.metadata?.labels);
  });

  it('refuses zkleader.io/label "true": there is no role to label', () => {
    expect(refusal(inject(pod({ 'zkleader.io/config': 'settings', 'zkleader.io/label': 'true' }), config))).toBe(
      'annotation zkleader.io/label: "true" needs an election, and this pod has zkleader.io/config without zkleader.io/election (configuration only, nothing to label); ' +
        'set the annotation zkleader.io/election to a DNS-1123 label, or remove zkleader.io/label',
    );
  });

  it('admits shareProcessNamespace with automounting off, without a warning: the sidecar holds no token', () => {
    injected(inject(pod({ 'zkleader.io/config': 'settings' }, { app: 'web' }, { shareProcessNamespace: true, automountServiceAccountToken: false }), config));
  });

  it('works in classic mode too', () => {
    const classic = injected(inject(pod({ 'zkleader.io/config': 'settings', 'zkleader.io/sidecar-mode': 'classic' }), config));
    expect(classic.spec?.containers.map((c) => c.name)).toEqual(['web', 'zkleader']);
    expect(envOf(classic)).toMatchObject({ ZKLEADER_CONFIGS: 'settings', ZKLEADER_NO_LABEL: 'true' });
    expect(envOf(classic)).not.toHaveProperty('ZKLEADER_ELECTION');
  });

  it('keeps the ZooKeeper credential with zookeeperAuth: required (configs live in the tenant\'s tree)', () => {
    const result = injected(inject(pod({ 'zkleader.io/config': 'settings' }), { ...config, zookeeperAuth: 'required' }));
    expect(envOf(result).ZKLEADER_CREDENTIAL_FILE).toBe('/var/run/zkleader-credential/credential');
  });
});

describe('zkleader.io/config with zkleader.io/election: both', () => {
  const output = injected(inject(pod({ 'zkleader.io/election': 'orders', 'zkleader.io/config': 'orders-settings' }), config));

  it('joins the election, labels and gets its token, and keeps the configs', () => {
    const env = envOf(output);
    expect(env).toMatchObject({ ZKLEADER_ELECTION: 'orders', ZKLEADER_CONFIGS: 'orders-settings' });
    expect(env).not.toHaveProperty('ZKLEADER_NO_LABEL');
    expect(output.metadata?.labels).toEqual({ app: 'web', 'zkleader.io/election': 'orders', 'zkleader.io/role': 'follower' });
    expect(output.spec?.volumes?.find((v) => v.name === 'zkleader-token')?.projected?.sources?.[0]).toEqual({ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } });
    const flags = sidecarCliFlags(output) as Record<string, unknown>;
    expect([flags.election, flags.configs, flags['no-label']]).toEqual(['orders', ['orders-settings'], false]);
    expect(validatePod(asPod(output))).toEqual([]);
  });

  it('differs from the same pod without configs only by ZKLEADER_CONFIGS and the volume\'s room', () => {
    const without = injected(inject(pod({ 'zkleader.io/election': 'orders' }), config));
    const strip = (p: V1Pod) => {
      const copy = structuredClone(p);
      delete copy.metadata?.annotations?.['zkleader.io/config'];
      delete copy.metadata?.annotations?.['zkleader.io/status'];
      const sidecar = sidecarOf(copy);
      sidecar.env = sidecar.env?.filter((e) => e.name !== 'ZKLEADER_CONFIGS');
      const volume = copy.spec?.volumes?.find((v) => v.name === 'zkleader');
      if (volume?.emptyDir) volume.emptyDir.sizeLimit = 'x';
      return copy;
    };
    expect(strip(output)).toEqual(strip(without));
  });

  it('keeps labelling off when zkleader.io/label says "false"', () => {
    const result = injected(inject(pod({ 'zkleader.io/election': 'orders', 'zkleader.io/config': 'a', 'zkleader.io/label': 'false' }), config));
    expect(envOf(result)).toMatchObject({ ZKLEADER_ELECTION: 'orders', ZKLEADER_CONFIGS: 'a', ZKLEADER_NO_LABEL: 'true' });
    expect(result.metadata?.labels).toEqual({ app: 'web', 'zkleader.io/election': 'orders' });
  });

  it('refuses a bad election name as before', () => {
    expect(refusal(inject(pod({ 'zkleader.io/election': 'Orders', 'zkleader.io/config': 'a' }), config))).toMatch(/^annotation zkleader\.io\/election: expected a DNS-1123 label/);
  });
});

describe('zkleader.io/config values', () => {
  const names = (n: number) => Array.from({ length: n }, (_, i) => `config-${i}`);

  it.each([
    ['a', ['a']],
    ['a,b', ['a', 'b']],
    [' a , b.example ', ['a', 'b.example']],
    ['settings.v2,z-1', ['settings.v2', 'z-1']],
    ['x'.repeat(253), ['x'.repeat(253)]],
  ])('takes %j in the order given', (raw, expected) => {
    expect(parseConfigList(raw)).toEqual(expected);
    expect(envOf(injected(inject(pod({ 'zkleader.io/config': raw }), config))).ZKLEADER_CONFIGS).toBe(expected.join(','));
  });

  it(`takes ${MAX_CONFIGS} names`, () => {
    expect(parseConfigList(names(MAX_CONFIGS).join(','))).toHaveLength(MAX_CONFIGS);
  });

  it.each([
    ['', `${FORM}, got "" (an empty name)`],
    [' ', `${FORM}, got " " (an empty name)`],
    ['a,,b', `${FORM}, got "a,,b" (an empty name)`],
    ['a,', `${FORM}, got "a," (an empty name)`],
    ['Settings', `${FORM}; "Settings" is not a ConfigMap name`],
    ['web_settings', `${FORM}; "web_settings" is not a ConfigMap name`],
    ['a/b', `${FORM}; "a/b" is not a ConfigMap name`],
    ['-a', `${FORM}; "-a" is not a ConfigMap name`],
    ['a..b', `${FORM}; "a..b" is not a ConfigMap name`],
    ['x'.repeat(254), `${FORM}; "${'x'.repeat(254)}" is not a ConfigMap name`],
    ['a,b, a', `${FORM}; "a" is named twice`],
    [names(MAX_CONFIGS + 1).join(','), `${FORM}; got ${MAX_CONFIGS + 1} names (one config holds any number of keys: merge some)`],
  ])('refuses %j with 400, naming the annotation and the expected form', (raw, message) => {
    expect(refusal(inject(pod({ 'zkleader.io/config': raw }), config))).toBe(message);
    // Also with an election: a bad config is never ignored.
    expect(refusal(inject(pod({ 'zkleader.io/election': 'web', 'zkleader.io/config': raw }), config))).toBe(message);
  });

  it('refuses a bad value before anything else, even on a pod that would have no election', () => {
    expect(refusal(inject(pod({ 'zkleader.io/config': 'A' }, null), config))).toBe(`${FORM}; "A" is not a ConfigMap name`);
  });

  it('is a known key: no "unknown annotation" warning', () => {
    const result = inject(pod({ 'zkleader.io/config': 'settings' }), config);
    expect(result).toMatchObject({ kind: 'injected', warnings: [] });
  });
});

describe('zkleader inject (injectDocuments) shares the code', () => {
  it('makes a Deployment\'s template configuration-only, and refuses a bad value naming the document', () => {
    const deployment = (value: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: pricing
spec:
  selector:
    matchLabels:
      app: pricing
  template:
    metadata:
      labels:
        app: pricing
      annotations:
        zkleader.io/inject: "true"
        zkleader.io/config: ${value}
    spec:
      containers:
        - name: app
          image: pricing:1
`;
    const result = injectDocuments(deployment('pricing-rules'), config);
    if (result.kind !== 'injected') throw new Error(result.message);
    expect(result.output).toMatch(/- name: ZKLEADER_CONFIGS\n +value: pricing-rules\n/);
    expect(result.output).not.toContain('ZKLEADER_ELECTION');
    expect(result.output).not.toContain('zkleader.io/role');
    expect(result.output).not.toContain('zkleader.io/election');
    expect(injectDocuments(deployment('"pricing,pricing"'), config)).toMatchObject({
      kind: 'refused',
      message: `document 1 (Deployment pricing): ${FORM}; "pricing" is named twice`,
    });
  });
});
