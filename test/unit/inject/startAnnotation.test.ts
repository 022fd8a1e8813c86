import { describe, expect, it } from '@jest/globals';
import type { V1Container, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { parseFlags } from '../../../cli/flags.js';
import { parseStartPolicy } from '../../../cli/valueSyntax.js';
import { sidecarFlags } from '../../../sidecar/sidecarFlags.js';
import { STANDBY_FAILURE_THRESHOLD } from '../../../src/buildSidecar.js';
import { defaultInjectorConfig, type InjectorConfig } from '../../../src/config.js';
import { inject, type InjectResult } from '../../../src/inject.js';
import { validatePod } from '../../support/apiEmulator/podValidation.js';

// zkleader.io/start (issue 14, cold standby): `leader` gates the app containers on leadership.

const config: InjectorConfig = { ...defaultInjectorConfig('1.2.3'), zookeeper: 'zk:2181' };
const optIn = { 'zkleader.io/inject': 'true' };

function pod(annotations: Record<string, string>, spec: Partial<V1PodSpec> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-0', namespace: 'shop', labels: { app: 'web' }, annotations: { ...optIn, ...annotations } },
    spec: { containers: [{ name: 'web', image: 'web:1' }], ...spec },
  };
}

function sidecarOf(result: InjectResult): V1Container {
  if (result.kind !== 'injected') throw new Error(`expected an injection, got ${JSON.stringify(result)}`);
  expect(result.warnings).toEqual([]);
  const sidecar = result.pod.spec?.initContainers?.find((c) => c.name === 'zkleader');
  if (!sidecar) throw new Error('no native sidecar');
  return sidecar;
}

function refusal(result: InjectResult): string {
  if (result.kind !== 'refused') throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  expect(result.code).toBe(400);
  return result.message;
}

describe('the value syntax shared by the annotation and --start', () => {
  it('takes always or leader, and nothing else', () => {
    expect(parseStartPolicy('always')).toBe('always');
    expect(parseStartPolicy('leader')).toBe('leader');
    for (const bad of ['Leader', 'standby', '', ' leader', 'true']) expect(() => parseStartPolicy(bad)).toThrow(`expected "always" or "leader", got ${JSON.stringify(bad)}`);
  });
});

describe('zkleader.io/start: leader', () => {
  it('gates the native sidecar on /startz with a startupProbe that never gives up, and tells the sidecar --start leader', () => {
    const result = inject(pod({ 'zkleader.io/start': 'leader' }), config);
    const sidecar = sidecarOf(result);
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.startupProbe).toEqual({ httpGet: { path: '/startz', port: 4040 }, periodSeconds: 1, failureThreshold: STANDBY_FAILURE_THRESHOLD });
    expect(STANDBY_FAILURE_THRESHOLD).toBe(2 ** 31 - 1);
    expect(sidecar.env).toContainEqual({ name: 'ZKLEADER_START', value: 'leader' });
    // The liveness probe stays: a hung sidecar is restarted (and, its app having started, deletes its pod).
    expect(sidecar.livenessProbe?.httpGet?.path).toBe('/healthz');
    // What the apiserver would store: the probe's int32 fields are in range.
    if (result.kind !== 'injected') throw new Error('not injected');
    expect(validatePod(result.pod)).toEqual([]);
    // The same environment configures the sidecar's own flags.
    const env = Object.fromEntries((sidecar.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
    expect(parseFlags(sidecarFlags, [], { ...env, POD_NAME: 'web-0', POD_NAMESPACE: 'shop' }).flags.start).toBe('leader');
  });

  it('is no annotation warning, and `always` (the default) injects what no annotation does', () => {
    const plain = sidecarOf(inject(pod({}), config));
    const always = sidecarOf(inject(pod({ 'zkleader.io/start': 'always' }), config));
    expect(always).toEqual(plain);
    expect(plain.startupProbe).toEqual({ httpGet: { path: '/readyz', port: 4040 }, periodSeconds: 1, failureThreshold: 300 });
    expect(plain.env?.some((e) => e.name === 'ZKLEADER_START')).toBe(false);
  });

  it.each<[string, Record<string, string>, InjectorConfig, string]>([
    ['another value', { 'zkleader.io/start': 'standby' }, config, 'annotation zkleader.io/start: expected "always" or "leader", got "standby"'],
    [
      'classic mode by annotation',
      { 'zkleader.io/start': 'leader', 'zkleader.io/sidecar-mode': 'classic' },
      config,
      'annotation zkleader.io/start: "leader" needs the native sidecar (an init container whose startupProbe holds the app containers back), and this pod would get the classic one, which cannot keep its app from starting; set the annotation zkleader.io/sidecar-mode to "native", or remove zkleader.io/start',
    ],
    ['classic mode by the webhook setting', { 'zkleader.io/start': 'leader' }, { ...config, sidecarMode: 'classic' }, 'annotation zkleader.io/start: "leader" needs the native sidecar'],
    [
      'a configuration-only pod',
      { 'zkleader.io/start': 'leader', 'zkleader.io/config': 'app' },
      config,
      'annotation zkleader.io/start: "leader" needs an election, and this pod has zkleader.io/config without zkleader.io/election (configuration only); set the annotation zkleader.io/election to a DNS-1123 label, or remove zkleader.io/start',
    ],
    [
      'no API access',
      { 'zkleader.io/start': 'leader', 'zkleader.io/label': 'false' },
      config,
      'annotation zkleader.io/start: "leader" needs API access (a started leader that loses leadership deletes its own pod), and zkleader.io/label is "false"; remove zkleader.io/label, or remove zkleader.io/start',
    ],
  ])('is refused with %s, naming the annotation', (_what, annotations, cfg, message) => {
    const pod0 = pod(annotations);
    // A configuration-only pod has no app label to name an election by.
    if (annotations['zkleader.io/config']) delete pod0.metadata?.labels?.app;
    expect(refusal(inject(pod0, cfg))).toContain(message);
  });

  it('keeps a Job in native mode (the classic default is replaced with a warning) and gates it', () => {
    const result = inject(pod({ 'zkleader.io/start': 'leader' }, { restartPolicy: 'Never' }), { ...config, sidecarMode: 'classic' });
    if (result.kind !== 'injected') throw new Error(JSON.stringify(result));
    expect(result.warnings).toEqual([expect.stringContaining('injected in native mode although the webhook')]);
    expect(result.pod.spec?.initContainers?.find((c) => c.name === 'zkleader')?.startupProbe?.httpGet?.path).toBe('/startz');
  });
});

describe('the sidecar flag --start', () => {
  const required = ['--zookeeper', 'zk:2181', '--election', 'orders', '--namespace', 'shop', '--pod-name', 'orders-0'];

  it('defaults to always, reads ZKLEADER_START, and refuses another value naming the flag', () => {
    expect(parseFlags(sidecarFlags, required, {}).flags.start).toBe('always');
    expect(parseFlags(sidecarFlags, [...required, '--start', 'leader'], {}).flags.start).toBe('leader');
    expect(parseFlags(sidecarFlags, required, { ZKLEADER_START: 'leader' }).flags.start).toBe('leader');
    expect(() => parseFlags(sidecarFlags, [...required, '--start', 'first'], {})).toThrow('--start: expected "always" or "leader", got "first"');
    expect(() => parseFlags(sidecarFlags, required, { ZKLEADER_START: 'yes' })).toThrow(/ZKLEADER_START.*expected "always" or "leader", got "yes"/);
  });
});
