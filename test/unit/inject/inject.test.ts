import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultInjectorConfig, loadInjectorConfig, parseInjectorConfig, type InjectorConfig } from '../../../src/config.js';
import { inject, type InjectResult } from '../../../src/inject.js';
import { applyPatch, diffPatch } from '../../../src/patch.js';
import { readPod } from '../../../src/podShape.js';

const config: InjectorConfig = { ...defaultInjectorConfig('1.2.3'), zookeeper: 'zk:2181' };

function pod(annotations: Record<string, string> | undefined, extra: Partial<V1Pod['spec']> = {}, labels: Record<string, string> | undefined = { app: 'web' }): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-0', ...(labels && { labels }), ...(annotations && { annotations }) },
    spec: { containers: [{ name: 'web', image: 'web:1' }], ...extra },
  };
}

function injected(result: InjectResult): V1Pod {
  if (result.kind !== 'injected') throw new Error(`expected an injection, got ${JSON.stringify(result)}`);
  return result.pod;
}

const optIn = { 'zkleader.io/inject': 'true' };

describe('inject: who is injected', () => {
  it('skips pods that do not opt in, and pods that opt out by label or annotation', () => {
    expect(inject(pod(undefined), config)).toEqual({ kind: 'skipped', reason: 'not-requested', warnings: [] });
    expect(inject(pod({ 'zkleader.io/inject': 'false' }), config)).toMatchObject({ kind: 'skipped', reason: 'opted-out' });
    expect(inject(pod(optIn, {}, { app: 'web', 'zkleader.io/inject': 'false' }), config)).toMatchObject({ kind: 'skipped', reason: 'opted-out' });
  });

  it('injects on the label alone', () => {
    expect(inject(pod(undefined, {}, { app: 'web', 'zkleader.io/inject': 'true' }), config).kind).toBe('injected');
  });

  it('refuses an opt-in label value that is neither true nor false, naming the label', () => {
    expect(inject(pod(undefined, {}, { app: 'web', 'zkleader.io/inject': 'True' }), config)).toEqual({
      kind: 'refused',
      code: 400,
      message: 'label zkleader.io/inject: expected "true" or "false", got "True"',
      warnings: [],
    });
  });

  it('does not change its input', () => {
    const input = pod(optIn);
    const copy = structuredClone(input);
    inject(input, config);
    expect(input).toEqual(copy);
  });
});

describe('inject: settings', () => {
  it('takes the mode and ZooKeeper from the config unless annotations override them', () => {
    const classic = { ...config, sidecarMode: 'classic' as const };
    expect(injected(inject(pod(optIn), classic)).spec?.containers.map((c) => c.name)).toEqual(['web', 'zkleader']);
    const native = injected(inject(pod({ ...optIn, 'zkleader.io/sidecar-mode': 'native', 'zkleader.io/zookeeper': 'a:1,b:2/x' }), classic));
    expect(native.spec?.initContainers?.map((c) => c.name)).toEqual(['zkleader']);
    expect(native.spec?.initContainers?.[0]?.env).toContainEqual({ name: 'ZKLEADER_ZOOKEEPER', value: 'a:1,b:2/x' });
  });

  it('refuses without any ZooKeeper, naming the annotation to set', () => {
    const result = inject(pod(optIn), { ...config, zookeeper: undefined });
    expect(result).toMatchObject({ kind: 'refused', code: 400 });
    expect(result.kind === 'refused' && result.message).toContain('set the annotation zkleader.io/zookeeper');
  });

  it('prefers the election annotation, then app.kubernetes.io/name, then app', () => {
    const election = (p: V1Pod) => injected(inject(p, config)).metadata?.labels?.['zkleader.io/election'];
    expect(election(pod({ ...optIn, 'zkleader.io/election': 'chosen' }, {}, { app: 'a', 'app.kubernetes.io/name': 'b' }))).toBe('chosen');
    expect(election(pod(optIn, {}, { app: 'a', 'app.kubernetes.io/name': 'b' }))).toBe('b');
    expect(election(pod(optIn, {}, { app: 'a' }))).toBe('a');
  });

  it('refuses a label that cannot name an election, pointing at the annotation', () => {
    const result = inject(pod(optIn, {}, { app: 'Web_App' }), config);
    expect(result.kind === 'refused' && result.message).toBe(
      'label app "Web_App" cannot name the election: expected a DNS-1123 label; set the annotation zkleader.io/election',
    );
  });

  it('sets ZKLEADER_NO_LABEL and no role label when labelling is off, and an empty directory where the token would be', () => {
    const result = injected(inject(pod({ ...optIn, 'zkleader.io/label': 'false' }), config));
    expect(result.spec?.initContainers?.[0]?.env).toContainEqual({ name: 'ZKLEADER_NO_LABEL', value: 'true' });
    expect(result.metadata?.labels).toEqual({ app: 'web', 'zkleader.io/election': 'web' });
    // Something must be mounted there, or the ServiceAccount admission plugin mounts the pod's token.
    expect(result.spec?.volumes?.map((v) => [v.name, v.emptyDir !== undefined])).toEqual([['zkleader', true], ['zkleader-token', true]]);
    expect(result.spec?.initContainers?.[0]?.volumeMounts).toContainEqual({ name: 'zkleader-token', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
  });

  it('overrides a role label given in the manifest: a new pod is a follower', () => {
    expect(injected(inject(pod(optIn, {}, { app: 'web', 'zkleader.io/role': 'leader' }), config)).metadata?.labels?.['zkleader.io/role']).toBe('follower');
  });

  it('warns about unknown zkleader.io keys and still injects', () => {
    const result = inject(pod({ ...optIn, 'zkleader.io/mountpath': '/x', 'other.io/x': 'y' }), config);
    expect(result).toMatchObject({ kind: 'injected', warnings: ['unknown annotation zkleader.io/mountpath is ignored (a typo?)'] });
  });
});

describe('inject: the JSON patch', () => {
  it('adds whole maps and lists where the pod has none, escaping "/" in keys as ~1', () => {
    const input = pod(undefined, {}, { app: 'web', 'zkleader.io/inject': 'true' });
    const patch = diffPatch(input, injected(inject(input, config)));
    const paths = patch.map((op) => `${op.op} ${op.path}`);
    expect(paths).toContain('add /metadata/annotations');
    expect(paths).toContain('add /spec/volumes');
    expect(paths).toContain('add /spec/initContainers');
    expect(paths).toContain('add /metadata/labels/zkleader.io~1role');
    expect(paths).toContain('add /spec/containers/0/volumeMounts');
  });

  it('appends to existing maps and lists, key by key', () => {
    const input = pod(optIn, { volumes: [{ name: 'data', emptyDir: {} }], initContainers: [{ name: 'init', image: 'i:1' }] });
    const output = injected(inject(input, config));
    const patch = diffPatch(input, output);
    expect(patch.map((op) => `${op.op} ${op.path}`).sort()).toEqual(
      [
        'add /metadata/annotations/zkleader.io~1status',
        'add /metadata/labels/zkleader.io~1election',
        'add /metadata/labels/zkleader.io~1role',
        'add /spec/containers/0/volumeMounts',
        'add /spec/initContainers/1',
        'add /spec/volumes/1',
        'add /spec/volumes/2',
      ].sort(),
    );
    expect(applyPatch(input, patch)).toEqual(output);
  });
});

describe('inject: an injected pod', () => {
  it('records version, template hash and what it added in the status annotation', () => {
    const status = JSON.parse(injected(inject(pod(optIn), config)).metadata?.annotations?.['zkleader.io/status'] ?? '{}') as unknown;
    expect(status).toEqual({
      version: '1.2.3',
      templateHash: expect.stringMatching(/^[0-9a-f]{16}$/),
      injected: { containers: ['zkleader'], volumes: ['zkleader', 'zkleader-token'], mounts: ['web'] },
    });
  });

  it('changes the template hash when the sidecar changes', () => {
    const hash = (c: InjectorConfig) => injected(inject(pod(optIn), c)).metadata?.annotations?.['zkleader.io/status']?.match(/"templateHash":"(\w+)"/)?.[1];
    expect(hash(config)).not.toBe(hash({ ...config, image: 'other:1' }));
  });

  it('is skipped on a second pass, and tops up only containers added since', () => {
    const once = injected(inject(pod(optIn), config));
    expect(inject(once, config)).toEqual({ kind: 'skipped', reason: 'already-injected', warnings: [] });
    once.spec?.containers.push({ name: 'late', image: 'late:1' });
    const topped = injected(inject(once, { ...config, version: '9.9.9', zookeeper: undefined }));
    expect(topped.spec?.containers.find((c) => c.name === 'late')?.volumeMounts).toEqual([{ name: 'zkleader', mountPath: '/var/run/zkleader', readOnly: true }]);
    expect(topped.spec?.initContainers?.filter((c) => c.name === 'zkleader')).toHaveLength(1);
    const status = JSON.parse(topped.metadata?.annotations?.['zkleader.io/status'] ?? '{}') as { version: string; injected: { mounts: string[] } };
    // The record keeps the version that injected the sidecar.
    expect(status).toMatchObject({ version: '1.2.3', injected: { mounts: ['web', 'late'] } });
  });

  it('does not top up containers outside zkleader.io/containers', () => {
    const once = injected(inject(pod({ ...optIn, 'zkleader.io/containers': 'web' }), config));
    once.spec?.containers.push({ name: 'late', image: 'late:1' });
    expect(inject(once, config)).toMatchObject({ kind: 'skipped', reason: 'already-injected' });
  });

  it('refuses a top-up whose new container already uses the mount path', () => {
    const once = injected(inject(pod(optIn), config));
    once.spec?.volumes?.push({ name: 'own', emptyDir: {} });
    once.spec?.containers.push({ name: 'late', image: 'late:1', volumeMounts: [{ name: 'own', mountPath: '/var/run/zkleader/' }] });
    const result = inject(once, config);
    expect(result.kind === 'refused' && result.message).toContain('container "late" already mounts the volume "own" at /var/run/zkleader');
  });

  it('injects afresh when only a stale status annotation is there', () => {
    const stale = pod({ ...optIn, 'zkleader.io/status': '{"version":"0.0.1"}' });
    const result = injected(inject(stale, config));
    expect(result.spec?.initContainers?.map((c) => c.name)).toEqual(['zkleader']);
    expect(result.metadata?.annotations?.['zkleader.io/status']).toContain('"version":"1.2.3"');
  });

  it.each(['true', 'false'])('refuses a clash with the token volume\'s name (labelling %s)', (label) => {
    const result = inject(pod({ ...optIn, 'zkleader.io/label': label }, { volumes: [{ name: 'zkleader-token', emptyDir: {} }] }), config);
    expect(result.kind === 'refused' && result.message).toContain('volume named "zkleader-token"');
  });
});

describe('inject: a created pod never starts as the leader', () => {
  const leaderMeta = { labels: { app: 'web', 'zkleader.io/role': 'leader' }, annotations: { ...optIn, 'zkleader.io/leader-epoch': '42' } };

  it.each([['labelling on', {}], ['labelling off', { 'zkleader.io/label': 'false' }]])('%s: a template carrying role leader and an epoch gets follower and no epoch', (_case, extra) => {
    const input = pod({ ...leaderMeta.annotations, ...extra }, {}, leaderMeta.labels);
    const result = injected(inject(input, config));
    expect(result.metadata?.labels?.['zkleader.io/role']).toBe('follower');
    expect(result.metadata?.annotations?.['zkleader.io/leader-epoch']).toBeUndefined();
  });

  it('an injected pod copied from a running leader is demoted, and a follower copy is left alone', () => {
    const once = injected(inject(pod(optIn), config));
    const copy = structuredClone(once);
    copy.metadata = { ...copy.metadata, labels: { ...copy.metadata?.labels, 'zkleader.io/role': 'leader' }, annotations: { ...copy.metadata?.annotations, 'zkleader.io/leader-epoch': '42' } };
    const result = injected(inject(copy, config));
    expect(result.metadata?.labels?.['zkleader.io/role']).toBe('follower');
    expect(result.metadata?.annotations?.['zkleader.io/leader-epoch']).toBeUndefined();
    expect(result.spec).toEqual(once.spec);
    expect(inject(once, config)).toMatchObject({ kind: 'skipped', reason: 'already-injected' });
  });
});

describe('inject: which sidecar is ours', () => {
  it('is the one the status record lists, even after a later webhook set its command', () => {
    const once = injected(inject(pod(optIn), config));
    const wrapped = structuredClone(once);
    const sidecar = wrapped.spec?.initContainers?.[0];
    if (sidecar) sidecar.command = ['/bin/wrapper'];
    expect(inject(wrapped, config)).toMatchObject({ kind: 'skipped', reason: 'already-injected' });
  });

  it('is not a hand-written container named zkleader that runs `sidecar` without the record', () => {
    const result = inject(pod(optIn, { containers: [{ name: 'web', image: 'web:1' }, { name: 'zkleader', image: 'x:1', args: ['sidecar'] }] }), config);
    expect(result.kind === 'refused' && result.message).toContain('that zkleader did not inject (no zkleader.io/status record lists it)');
  });

  it('refuses, naming the volume, when the record lists the sidecar but the volume is gone', () => {
    const once = injected(inject(pod(optIn), config));
    const edited = { ...once, spec: { ...once.spec, containers: once.spec?.containers ?? [], volumes: (once.spec?.volumes ?? []).filter((v) => v.name !== 'zkleader') } };
    const result = inject(edited, config);
    expect(result.kind === 'refused' && result.message).toMatch(/^zkleader\.io\/status records the zkleader sidecar, but the pod has no volume "zkleader"/);
  });
});

describe('inject: what an attacker could send', () => {
  it('refuses an app container that mounts the sidecar\'s token volume, which the pod does not have yet', () => {
    const result = inject(pod(optIn, { automountServiceAccountToken: false, containers: [{ name: 'web', image: 'web:1', volumeMounts: [{ name: 'zkleader-token', mountPath: '/stolen' }] }] }), config);
    expect(result.kind === 'refused' && result.message).toBe('container "web" mounts the volume "zkleader-token", the zkleader sidecar\'s own token; remove the mount');
  });

  it('handles a mount path of 200,000 slashes in linear time (the regex it replaced took seconds)', () => {
    const started = process.hrtime.bigint();
    const result = inject(pod(optIn, { containers: [{ name: 'web', image: 'web:1', volumeMounts: [{ name: 'x', mountPath: `${'/'.repeat(200_000)}a` }] }], volumes: [{ name: 'x', emptyDir: {} }] }), config);
    expect(result.kind).toBe('injected');
    // Generous: the quadratic version took about 35 s here; the loop takes about a millisecond.
    expect(Number(process.hrtime.bigint() - started) / 1e9).toBeLessThan(3);
  });

  it('does not parse a status annotation longer than a real record (a JSON bomb inside a string)', () => {
    const once = injected(inject(pod(optIn), config));
    // A record of ours, padded with 20,000 keys: parsed, it would be taken for ours.
    const record = JSON.parse(once.metadata?.annotations?.['zkleader.io/status'] ?? '{}') as Record<string, unknown>;
    const bomb = JSON.stringify({ ...record, ...Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])) });
    const withBomb = { ...once, metadata: { ...once.metadata, annotations: { ...once.metadata?.annotations, 'zkleader.io/status': bomb } } };
    // Not a record of ours: the sidecar it has is not taken for ours.
    const result = inject(withBomb, config);
    expect(result.kind === 'refused' && result.message).toContain('that zkleader did not inject (no zkleader.io/status record lists it)');
  });
});

describe('inject: mount paths the runtime could not mount', () => {
  it.each(['/proc', '/proc/zk', '/sys/zk', '/dev', '/dev/shm/zk'])('refuses %s, naming the annotation', (path) => {
    const result = inject(pod({ ...optIn, 'zkleader.io/mount-path': path }), config);
    expect(result.kind === 'refused' && result.message).toMatch(/^annotation zkleader\.io\/mount-path: .*which the container runtime mounts itself/);
  });

  it('allows /process and /device (only the runtime directories themselves are refused)', () => {
    for (const path of ['/process/zk', '/device']) expect(inject(pod({ ...optIn, 'zkleader.io/mount-path': path }), config).kind).toBe('injected');
  });

  it('refuses a path inside a mount made read-only, and allows one inside a writable volume', () => {
    const withMount = (readOnly: boolean) =>
      pod({ ...optIn }, { containers: [{ name: 'web', image: 'web:1', volumeMounts: [{ name: 'run', mountPath: '/var/run', readOnly }] }], volumes: [{ name: 'run', emptyDir: {} }] });
    expect(inject(withMount(false), config).kind).toBe('injected');
    const result = inject(withMount(true), config);
    expect(result.kind === 'refused' && result.message).toContain('mounts the volume "run" read-only at /var/run, so no mount point can be made for /var/run/zkleader inside it');
  });
});

describe('inject: pods as Kubernetes really runs them', () => {
  const sidecarOf = (p: V1Pod) => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((c) => c.name === 'zkleader');

  it.each([
    ['the pod leaves automount unset (its ServiceAccount may turn it off)', {}],
    ['the pod turns automount on', { automountServiceAccountToken: true }],
    ['the pod turns automount off', { automountServiceAccountToken: false }],
  ])('gives the labelling sidecar its own projected token when %s', (_case, extra) => {
    const result = injected(inject(pod(optIn, extra), config));
    expect(sidecarOf(result)?.volumeMounts).toContainEqual({ name: 'zkleader-token', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
    expect(result.spec?.volumes?.find((v) => v.name === 'zkleader-token')?.projected?.sources?.[0]?.serviceAccountToken).toEqual({ path: 'token', expirationSeconds: 3607 });
    // The app's own token (or none) is the pod's business.
    expect(result.spec?.containers[0]?.volumeMounts?.map((m) => m.name)).toEqual(['zkleader']);
  });

  it('refuses hostNetwork pods, naming the field and why', () => {
    const result = inject(pod(optIn, { hostNetwork: true }), config);
    expect(result.kind === 'refused' && result.message).toMatch(/^spec\.hostNetwork: true is not supported: the sidecar would hold port 4040 on the node.*dnsPolicy ClusterFirst/);
  });

  it('refuses Windows pods, by spec.os or by node selector', () => {
    const result = inject(pod(optIn, { os: { name: 'windows' } }), config);
    expect(result.kind === 'refused' && result.message).toContain('spec.os.name is "windows"');
    const selected = inject(pod(optIn, { nodeSelector: { 'kubernetes.io/os': 'windows' } }), config);
    expect(selected.kind === 'refused' && selected.message).toContain('spec.nodeSelector kubernetes.io/os is "windows"');
    expect(inject(pod(optIn, { os: { name: 'linux' }, nodeSelector: { 'kubernetes.io/os': 'linux' } }), config).kind).toBe('injected');
  });

  it('names the sidecar port zkleader, not http, and refuses an app port of that name', () => {
    const result = injected(inject(pod(optIn), config));
    expect(sidecarOf(result)?.ports).toEqual([{ name: 'zkleader', containerPort: 4040, protocol: 'TCP' }]);
    const clash = pod(optIn, { containers: [{ name: 'web', image: 'web:1', ports: [{ name: 'zkleader', containerPort: 8080 }] }] });
    const refused = inject(clash, config);
    expect(refused.kind === 'refused' && refused.message).toBe('container "web" declares a port named "zkleader", the name of the zkleader sidecar\'s port; rename it');
  });

  it('listens on both address families', () => {
    expect(sidecarOf(injected(inject(pod(optIn), config)))?.env).toContainEqual({ name: 'ZKLEADER_LISTEN', value: '[::]:4040' });
  });

  describe('in a pod that runs to completion (restartPolicy OnFailure or Never)', () => {
    const classic = { ...config, sidecarMode: 'classic' as const };
    it.each(['OnFailure', 'Never'])('%s: a classic default becomes native, with a warning', (restartPolicy) => {
      const result = inject(pod(optIn, { restartPolicy }), classic);
      const output = injected(result);
      expect(output.spec?.initContainers?.map((c) => [c.name, c.restartPolicy])).toEqual([['zkleader', 'Always']]);
      expect(output.spec?.containers.map((c) => c.name)).toEqual(['web']);
      expect(result.warnings).toEqual([
        `the sidecar is injected in native mode although the webhook's sidecarMode is classic: with restartPolicy ${restartPolicy} (a Job's or CronJob's pod) the classic sidecar never exits, so the pod would never complete`,
      ]);
    });

    it('refuses classic mode asked for by annotation', () => {
      const result = inject(pod({ ...optIn, 'zkleader.io/sidecar-mode': 'classic' }, { restartPolicy: 'Never' }), config);
      expect(result.kind === 'refused' && result.message).toMatch(/^annotation zkleader\.io\/sidecar-mode: "classic" cannot be used with restartPolicy Never.*set it to "native"$/);
    });

    it('keeps classic mode where the pod restarts (restartPolicy Always or unset)', () => {
      expect(injected(inject(pod(optIn, { restartPolicy: 'Always' }), classic)).spec?.containers.map((c) => c.name)).toEqual(['web', 'zkleader']);
    });
  });

  describe('with shareProcessNamespace', () => {
    it('warns that app containers of the sidecar\'s uid can read its token', () => {
      const result = inject(pod(optIn, { shareProcessNamespace: true }), config);
      expect(result.kind).toBe('injected');
      expect(result.warnings).toEqual([expect.stringMatching(/^spec\.shareProcessNamespace: true lets app containers that run as uid 65532, or as root, read the sidecar's service account token through \/proc/)]);
    });

    it('refuses when the token is the sidecar\'s alone (the app has none of its own)', () => {
      const result = inject(pod(optIn, { shareProcessNamespace: true, automountServiceAccountToken: false }), config);
      expect(result.kind === 'refused' && result.message).toContain('this pod gives its app containers no token of their own');
    });

    it('says nothing when the sidecar has no token (labelling off)', () => {
      expect(inject(pod({ ...optIn, 'zkleader.io/label': 'false' }, { shareProcessNamespace: true }), config)).toMatchObject({ kind: 'injected', warnings: [] });
    });
  });
});

describe('parseInjectorConfig', () => {
  it('fills the defaults: image of this version, native, 64Mi request, 96Mi limit', () => {
    expect(parseInjectorConfig(null, '1.0.0')).toEqual({
      version: '1.0.0',
      image: 'ghcr.io/zkleader/zkleader:v1.0.0',
      imagePullPolicy: 'IfNotPresent',
      zookeeper: undefined,
      sidecarMode: 'native',
      resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '96Mi' } },
      zookeeperAuth: 'none',
      cluster: '',
    });
  });

  it.each(['east', 'eu-west-1', ''])('takes cluster: %j', (cluster) => {
    expect(parseInjectorConfig({ cluster }, '1').cluster).toBe(cluster);
  });

  it.each(['none', 'required'] as const)('takes zookeeperAuth: %s', (zookeeperAuth) => {
    expect(parseInjectorConfig({ zookeeperAuth }, '1').zookeeperAuth).toBe(zookeeperAuth);
  });

  it('merges resources over the defaults', () => {
    expect(parseInjectorConfig({ resources: { limits: { memory: '256Mi', cpu: 1 } } }, '1').resources).toEqual({
      requests: { cpu: '10m', memory: '64Mi' },
      limits: { memory: '256Mi', cpu: '1' },
    });
  });

  it.each([
    [{ imagePullPolicy: 'Sometimes' }, 'imagePullPolicy: expected Always, IfNotPresent or Never, got "Sometimes"'],
    [{ sidecarMode: 'sidecar' }, 'sidecarMode: expected "native" or "classic", got "sidecar"'],
    [{ zookeeper: 'zk' }, 'zookeeper: expected host:port[,host:port...][/chroot] with ports 1-65535; "zk" is not host:port'],
    [{ image: '' }, 'image: expected a non-empty string, got ""'],
    [{ resources: { limits: { memory: 'lots' } } }, 'resources.limits.memory: expected a Kubernetes quantity such as "10m" or "64Mi", got "lots"'],
    [{ resources: { limit: {} } }, 'resources.limit: unknown field; expected requests or limits'],
    [{ zookeeperAuth: 'yes' }, 'zookeeperAuth: expected "none" or "required", got "yes"'],
    [{ zookeeperAuth: 'Required' }, 'zookeeperAuth: expected "none" or "required", got "Required"'],
    [{ zookeeperAuth: true }, 'zookeeperAuth: expected "none" or "required", got true'],
    [{ zookeeperAuth: null }, 'zookeeperAuth: expected "none" or "required", got null'],
    [{ cluster: 'East' }, 'cluster: expected a DNS-1123 label (lower-case letters, digits and \'-\', at most 63 characters, starting and ending with a letter or digit) naming this cluster, or "" for none; got "East"'],
    [{ cluster: 'a'.repeat(64) }, 'cluster: expected a DNS-1123 label'],
    [{ cluster: 1 }, 'cluster: expected a DNS-1123 label'],
    [{ cluster: null }, 'cluster: expected a DNS-1123 label'],
    [{ mode: 'native' }, 'mode: unknown field; expected one of image, imagePullPolicy, zookeeper, sidecarMode, resources, zookeeperAuth, cluster'],
    [['image'], 'expected a map with the fields image, imagePullPolicy, zookeeper, sidecarMode, resources, zookeeperAuth, cluster'],
  ])('refuses %j naming the field', (document, message) => {
    expect(() => parseInjectorConfig(document, '1')).toThrow(message);
  });

  it('names the file and the key of a bad zookeeperAuth in a config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zkleader-config-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, 'zookeeper: zk:2181\nzookeeperAuth: on\n');
      expect(() => loadInjectorConfig(file, '1')).toThrow(`config ${file}: zookeeperAuth: expected "none" or "required", got "on"`);
      writeFileSync(file, 'zookeeper: zk:2181\nzookeeperAuth: required\n');
      expect(loadInjectorConfig(file, '1').zookeeperAuth).toBe('required');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('readPod', () => {
  it.each([
    [null, 'pod: expected an object'],
    [{ spec: {} }, 'pod.spec.containers: expected a list'],
    [{ spec: { containers: [{ image: 'x' }] } }, 'pod.spec.containers[0].name: expected a non-empty string'],
    [{ metadata: { labels: { a: 1 } }, spec: { containers: [] } }, 'pod.metadata.labels["a"]: expected a string'],
    [{ spec: { containers: [{ name: 'a', volumeMounts: [{ name: 'v' }] }] } }, 'pod.spec.containers[0].volumeMounts[0]: expected name and mountPath strings'],
    [{ spec: { containers: [{ name: 'a', args: [1] }] } }, 'pod.spec.containers[0].args: expected a list of strings'],
  ])('refuses %j naming the field', (value, message) => {
    expect(() => readPod(value)).toThrow(message);
  });

  it('accepts the nulls Go writes for empty lists and maps', () => {
    expect(() => readPod({ metadata: { labels: null }, spec: { containers: [{ name: 'a' }], volumes: null } })).not.toThrow();
  });
});
