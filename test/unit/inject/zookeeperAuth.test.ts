import { describe, expect, it } from '@jest/globals';
import type { V1Container, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseFlags } from '../../../cli/flags.js';
import { sidecarFlags } from '../../../sidecar/sidecarFlags.js';
import { defaultInjectorConfig, type InjectorConfig } from '../../../src/config.js';
import { inject, type InjectResult } from '../../../src/inject.js';
import { applyPatch, diffPatch } from '../../../src/patch.js';
import { validatePod } from '../../support/apiEmulator/podValidation.js';
import { goldenDir } from '../../support/goldenInject.js';

const open: InjectorConfig = { ...defaultInjectorConfig('1.2.3'), zookeeper: 'zk:2181' };
const required: InjectorConfig = { ...open, zookeeperAuth: 'required' };
const optIn = { 'zkleader.io/inject': 'true' };

const credentialVolume = {
  name: 'zkleader-credential',
  secret: { secretName: 'zkleader-zookeeper', items: [{ key: 'credential', path: 'credential' }], optional: true },
};
const credentialMount = { name: 'zkleader-credential', mountPath: '/var/run/zkleader-credential', readOnly: true };
const credentialEnv = { name: 'ZKLEADER_CREDENTIAL_FILE', value: '/var/run/zkleader-credential/credential' };

function pod(annotations: Record<string, string>, spec: Partial<V1PodSpec> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-0', namespace: 'shop', labels: { app: 'web' }, annotations },
    spec: { containers: [{ name: 'web', image: 'web:1' }], ...spec },
  };
}

function injected(result: InjectResult): V1Pod {
  if (result.kind !== 'injected') throw new Error(`expected an injection, got ${JSON.stringify(result)}`);
  return result.pod;
}

function refusal(result: InjectResult): string {
  if (result.kind !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  expect(result.code).toBe(400);
  return result.message;
}

const containersOf = (p: V1Pod): V1Container[] => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])];
const sidecarOf = (p: V1Pod): V1Container | undefined => containersOf(p).find((c) => c.name === 'zkleader');
const statusOf = (p: V1Pod) => JSON.parse(p.metadata?.annotations?.['zkleader.io/status'] ?? '{}') as { templateHash: string; injected: { volumes: string[] } };

/**
 * The checks of the `restricted` Pod Security Standard (Kubernetes pod-security-admission,
 * level restricted, latest) on a pod: what it would be refused for, empty when it passes.
 */
function restrictedViolations(p: V1Pod): string[] {
  const spec = p.spec as V1PodSpec;
  const violations: string[] = [];
  const allowedVolumes = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);
  for (const volume of spec.volumes ?? []) {
    for (const type of Object.keys(volume).filter((k) => k !== 'name')) if (!allowedVolumes.has(type)) violations.push(`volume ${volume.name}: ${type}`);
  }
  if (spec.hostNetwork === true || spec.hostPID === true || spec.hostIPC === true) violations.push('host namespaces');
  const pod = spec.securityContext ?? {};
  if (pod.runAsUser === 0) violations.push('pod runAsUser 0');
  for (const c of [...containersOf(p), ...(spec.ephemeralContainers ?? [])]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged === true) violations.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) violations.push(`${c.name}: allowPrivilegeEscalation != false`);
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) violations.push(`${c.name}: runAsNonRoot != true`);
    if (sc.runAsUser === 0) violations.push(`${c.name}: runAsUser 0`);
    const seccomp = (sc.seccompProfile ?? pod.seccompProfile)?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') violations.push(`${c.name}: seccompProfile ${seccomp}`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) violations.push(`${c.name}: capabilities not dropping ALL`);
    if ((sc.capabilities?.add ?? []).some((cap) => cap !== 'NET_BIND_SERVICE')) violations.push(`${c.name}: capabilities added`);
    if ((c.ports ?? []).some((port) => port.hostPort !== undefined && port.hostPort !== 0)) violations.push(`${c.name}: hostPort`);
  }
  return violations;
}

describe('zookeeperAuth: required', () => {
  it('gives the sidecar alone the credential volume, mounted read-only, and ZKLEADER_CREDENTIAL_FILE', () => {
    const output = injected(inject(pod(optIn, { initContainers: [{ name: 'init', image: 'init:1' }] }), required));
    expect(output.spec?.volumes?.find((v) => v.name === 'zkleader-credential')).toEqual(credentialVolume);
    const sidecar = sidecarOf(output);
    expect(sidecar?.volumeMounts).toContainEqual(credentialMount);
    expect(sidecar?.env).toContainEqual(credentialEnv);
    for (const c of containersOf(output).filter((x) => x.name !== 'zkleader')) {
      expect([c.name, (c.volumeMounts ?? []).map((m) => m.name)]).toEqual([c.name, c.name === 'web' ? ['zkleader'] : []]);
      expect(c.env).toBeUndefined();
    }
    expect(statusOf(output).injected.volumes).toEqual(['zkleader', 'zkleader-token', 'zkleader-credential']);
  });

  it('sets the environment the sidecar CLI reads as --credential-file', () => {
    const sidecar = sidecarOf(injected(inject(pod(optIn), required)));
    // The downward API resolves fieldRefs at run time; stand in for it.
    const downward: Record<string, string> = { 'metadata.name': 'web-0', 'metadata.namespace': 'shop', 'metadata.uid': 'uid-1', 'status.podIP': '10.0.1.7' };
    const env: NodeJS.ProcessEnv = {};
    for (const e of sidecar?.env ?? []) env[e.name] = e.value ?? downward[e.valueFrom?.fieldRef?.fieldPath ?? ''];
    const { flags } = parseFlags(sidecarFlags, sidecar?.args?.slice(1) ?? [], env);
    expect(flags['credential-file']).toBe('/var/run/zkleader-credential/credential');
  });

  it('leaves an open-mode injection without any credential (the default)', () => {
    expect(defaultInjectorConfig('1').zookeeperAuth).toBe('none');
    const output = injected(inject(pod(optIn), open));
    expect(JSON.stringify(output)).not.toContain('credential');
    expect(statusOf(output).injected.volumes).toEqual(['zkleader', 'zkleader-token']);
  });

  it('changes the template hash', () => {
    expect(statusOf(injected(inject(pod(optIn), required))).templateHash).not.toBe(statusOf(injected(inject(pod(optIn), open))).templateHash);
  });

  it('adds the credential also without labelling, and to a classic sidecar', () => {
    const unlabelled = injected(inject(pod({ ...optIn, 'zkleader.io/label': 'false' }), required));
    expect(unlabelled.spec?.volumes?.map((v) => v.name)).toEqual(['zkleader', 'zkleader-token', 'zkleader-credential']);
    expect(sidecarOf(unlabelled)?.env).toContainEqual(credentialEnv);
    const classic = injected(inject(pod({ ...optIn, 'zkleader.io/sidecar-mode': 'classic' }), required));
    expect(classic.spec?.containers.map((c) => c.name)).toEqual(['web', 'zkleader']);
    expect(sidecarOf(classic)?.volumeMounts).toContainEqual(credentialMount);
    expect(classic.spec?.containers[0]?.volumeMounts?.map((m) => m.name)).toEqual(['zkleader']);
  });

  it('is idempotent: a second pass is skipped, and a reinvocation tops up the shared mount only', () => {
    const once = injected(inject(pod(optIn), required));
    expect(inject(once, required)).toEqual({ kind: 'skipped', reason: 'already-injected', warnings: [] });
    const later = structuredClone(once);
    later.spec?.containers.push({ name: 'late', image: 'late:1' });
    const topped = injected(inject(later, required));
    expect(topped.spec?.containers.find((c) => c.name === 'late')?.volumeMounts).toEqual([{ name: 'zkleader', mountPath: '/var/run/zkleader', readOnly: true }]);
    expect(topped.spec?.volumes?.filter((v) => v.name === 'zkleader-credential')).toHaveLength(1);
    expect(sidecarOf(topped)?.volumeMounts?.filter((m) => m.name === 'zkleader-credential')).toHaveLength(1);
    expect(sidecarOf(topped)?.env?.filter((e) => e.name === 'ZKLEADER_CREDENTIAL_FILE')).toHaveLength(1);
  });

  it('gives a pod the API server accepts, the JSON patch reproduces it, and a restricted pod stays restricted', () => {
    const restrictedContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
    const input = pod(optIn, {
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      initContainers: [{ name: 'init', image: 'init:1', securityContext: restrictedContext }],
      containers: [{ name: 'web', image: 'web:1', securityContext: restrictedContext }],
    });
    expect(restrictedViolations(input)).toEqual([]);
    const output = injected(inject(input, required));
    expect(validatePod(output)).toEqual([]);
    expect(restrictedViolations(output)).toEqual([]);
    expect(applyPatch(input, diffPatch(input, output))).toEqual(output);
    // The checker is not vacuous: it catches what restricted forbids.
    expect(restrictedViolations(pod(optIn, { volumes: [{ name: 'host', hostPath: { path: '/' } }] }))).toContain('volume host: hostPath');
  });

  it('the golden case stays restricted and valid too', () => {
    const output = parseYaml(readFileSync(join(goldenDir, 'zookeeper-auth-required.injected.yaml'), 'utf8')) as V1Pod;
    expect(restrictedViolations(output)).toEqual([]);
    expect(validatePod(output)).toEqual([]);
    expect(sidecarOf(output)?.volumeMounts).toContainEqual(credentialMount);
  });
});

describe('zookeeperAuth: required refuses', () => {
  it('a pod with its own volume named zkleader-credential, naming it', () => {
    const input = pod(optIn, { volumes: [{ name: 'zkleader-credential', secret: { secretName: 'mine' } }] });
    expect(refusal(inject(input, required))).toBe(
      'the pod already has a volume named "zkleader-credential", which zkleader needs for its own volume; rename the pod\'s volume',
    );
    // In open mode the name is free: zkleader adds no such volume.
    expect(inject(input, open).kind).toBe('injected');
  });

  it.each([
    ['an app container', { containers: [{ name: 'web', image: 'web:1', volumeMounts: [{ name: 'zkleader-credential', mountPath: '/stolen' }] }] }, 'web'],
    ['an init container', { initContainers: [{ name: 'init', image: 'init:1', volumeMounts: [{ name: 'zkleader-credential', mountPath: '/stolen' }] }] }, 'init'],
  ])('%s that mounts zkleader-credential (the pod lacks it: ours would be mounted there)', (_case, spec, name) => {
    expect(refusal(inject(pod(optIn, spec), required))).toBe(
      `container "${name}" mounts the volume "zkleader-credential", the zkleader sidecar's own ZooKeeper credential; remove the mount`,
    );
  });

  it('on reinvocation, a container added since that mounts the credential volume', () => {
    const once = injected(inject(pod(optIn), required));
    once.spec?.containers.push({ name: 'late', image: 'late:1', volumeMounts: [{ name: 'zkleader-credential', mountPath: '/stolen' }] });
    expect(refusal(inject(once, required))).toBe('container "late" mounts the volume "zkleader-credential", the zkleader sidecar\'s own ZooKeeper credential; remove the mount');
  });

  it('on reinvocation, a container added since that mounts the token volume (in either mode)', () => {
    for (const config of [open, required]) {
      const once = injected(inject(pod(optIn), config));
      once.spec?.initContainers?.unshift({ name: 'early', image: 'early:1', volumeMounts: [{ name: 'zkleader-token', mountPath: '/stolen' }] });
      expect(refusal(inject(once, config))).toBe('container "early" mounts the volume "zkleader-token", the zkleader sidecar\'s own token; remove the mount');
    }
  });
});

describe('zookeeperAuth: required with shareProcessNamespace', () => {
  it('names the credential beside the token in the warning', () => {
    const result = inject(pod(optIn, { shareProcessNamespace: true }), required);
    expect(result).toMatchObject({ kind: 'injected' });
    expect(result.warnings).toEqual([
      "spec.shareProcessNamespace: true lets app containers that run as uid 65532, or as root, read the sidecar's service account token and ZooKeeper credential through /proc; run the app containers as another non-root uid",
    ]);
  });

  it('warns about the credential alone when the sidecar has no token (labelling off)', () => {
    const result = inject(pod({ ...optIn, 'zkleader.io/label': 'false' }, { shareProcessNamespace: true }), required);
    expect(result.warnings).toEqual([
      "spec.shareProcessNamespace: true lets app containers that run as uid 65532, or as root, read the sidecar's ZooKeeper credential through /proc; run the app containers as another non-root uid",
    ]);
  });
});
