import { describe, expect, it } from '@jest/globals';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { admit } from '../../../src/admission.js';
import { MalformedReviewError, readAdmissionReview } from '../../../src/admissionReview.js';
import { defaultInjectorConfig } from '../../../src/config.js';
import { inject } from '../../../src/inject.js';
import { applyPatch, diffPatch } from '../../../src/patch.js';
import { validatePod } from '../../support/apiEmulator/podValidation.js';

const config = { ...defaultInjectorConfig('1.0.0'), zookeeper: 'zk:2181' };

// c0 and c1 are given to the first two containers (zkleader.io/containers names them).
const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/).filter((n) => !n.startsWith('zkleader') && !/^c[01]$/.test(n));
const path = fc.constantFrom('/data', '/var/run/zkleader', '/etc/app', '/leader', '/tmp');

/** Mostly valid values, one time in ten one of the mistakes. */
function mostly(valid: string[], invalid: string[]): fc.Arbitrary<string> {
  return fc.oneof({ arbitrary: fc.constantFrom(...valid), weight: 9 }, { arbitrary: fc.constantFrom(...invalid), weight: 1 });
}

const annotationValues: Record<string, fc.Arbitrary<string>> = {
  'zkleader.io/inject': mostly(['true', 'true', 'false'], ['yes']),
  'zkleader.io/election': mostly(['orders', 'a'], ['Bad_Name', 'x'.repeat(64)]),
  'zkleader.io/zookeeper': mostly(['zk:2181', 'a:1,b:2/root'], ['zk', 'zk:0']),
  'zkleader.io/session-timeout': mostly(['10s', '4000ms', '40s'], ['3s', 'soon']),
  'zkleader.io/mount-path': mostly(['/var/run/zkleader', '/leader'], ['relative', '/a/../b']),
  'zkleader.io/sidecar-mode': mostly(['native', 'classic'], ['sidecar']),
  'zkleader.io/label': mostly(['true', 'false'], ['maybe']),
  'zkleader.io/containers': mostly(['c0'], ['nope', '']),
  'zkleader.io/config': mostly(['settings', 'a, b.example'], ['Bad', 'a,a', '']),
  'zkleader.io/typo': fc.constant('x'),
};

const podArbitrary: fc.Arbitrary<V1Pod> = fc
  .record({
    containerNames: fc.uniqueArray(name, { minLength: 1, maxLength: 4 }),
    initNames: fc.uniqueArray(name.map((n) => `init-${n}`), { maxLength: 2 }),
    volumeNames: fc.uniqueArray(name.map((n) => `v-${n}`), { maxLength: 3 }),
    mounts: fc.array(fc.tuple(fc.nat(), path), { maxLength: 3 }),
    annotations: fc.record(annotationValues, { requiredKeys: [] }),
    appLabel: fc.option(mostly(['orders', 'web'], ['Web_1'])),
    automount: fc.option(fc.boolean()),
  })
  .map(({ containerNames, initNames, volumeNames, mounts, annotations, appLabel, automount }) => {
    const containers: V1Container[] = containerNames.map((n, i) => ({ name: i < 2 ? `c${i}` : n, image: 'img:1' }));
    // Each mount names a real volume, at a path free in its container: the input is a valid pod.
    for (const [index, mountPath] of mounts) {
      const container = containers[index % containers.length] as V1Container;
      const volume = volumeNames[index % Math.max(volumeNames.length, 1)];
      if (volume === undefined || (container.volumeMounts ?? []).some((m) => m.mountPath === mountPath)) continue;
      container.volumeMounts = [...(container.volumeMounts ?? []), { name: volume, mountPath }];
    }
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'ns', ...(appLabel !== null && { labels: { app: appLabel } }), ...(Object.keys(annotations).length > 0 && { annotations: annotations as Record<string, string> }) },
      spec: {
        containers,
        ...(initNames.length > 0 && { initContainers: initNames.map((n) => ({ name: n, image: 'init:1' })) }),
        ...(volumeNames.length > 0 && { volumes: volumeNames.map((n) => ({ name: n, emptyDir: {} })) }),
        ...(automount !== null && { automountServiceAccountToken: automount }),
      },
    };
    return pod;
  });

describe('inject on random pods (fast-check)', () => {
  it.each([
    ['open', config],
    ['zookeeperAuth: required', { ...config, zookeeperAuth: 'required' as const }],
  ])('%s: never throws; an injected pod is valid, patchable and injected only once; a refusal says what is wrong', (_mode, config) => {
    let injectedCount = 0;
    let refusedCount = 0;
    fc.assert(
      fc.property(podArbitrary, (pod) => {
        expect(validatePod(pod)).toEqual([]);
        const before = structuredClone(pod);
        const result = inject(pod, config);
        expect(pod).toEqual(before);
        if (result.kind === 'injected') {
          injectedCount++;
          expect(validatePod(result.pod)).toEqual([]);
          expect(applyPatch(pod, diffPatch(pod, result.pod))).toEqual(result.pod);
          expect(inject(result.pod, config)).toMatchObject({ kind: 'skipped', reason: 'already-injected' });
          const sidecars = [...(result.pod.spec?.initContainers ?? []), ...(result.pod.spec?.containers ?? [])].filter((c) => c.name === 'zkleader');
          expect(sidecars).toHaveLength(1);
        } else if (result.kind === 'refused') {
          refusedCount++;
          expect(result.code).toBe(400);
          expect(result.message).toMatch(/annotation zkleader\.io\/|label |container |volume /);
          expect(result.message).toMatch(/expected|set the annotation|rename|use another|free/);
        }
      }),
      { numRuns: 300 },
    );
    // The generator must reach both branches, or the property says little.
    expect(injectedCount).toBeGreaterThan(20);
    expect(refusedCount).toBeGreaterThan(20);
  });
});

describe('admission of random or broken AdmissionReview bodies (fast-check)', () => {
  const requestArbitrary = fc.record(
    {
      uid: fc.oneof(fc.uuid(), fc.constant(''), fc.integer()),
      kind: fc.oneof(fc.constant({ group: '', version: 'v1', kind: 'Pod' }), fc.anything()),
      operation: fc.oneof(fc.constantFrom('CREATE', 'UPDATE', 'DELETE'), fc.anything()),
      namespace: fc.oneof(fc.constant('ns'), fc.anything()),
      object: fc.oneof(podArbitrary, fc.anything(), fc.object()),
    },
    { requiredKeys: [] },
  );
  const bodyArbitrary = fc.oneof(
    fc.anything(),
    fc.record({ apiVersion: fc.constantFrom('admission.k8s.io/v1', 'v1'), kind: fc.constantFrom('AdmissionReview', 'Pod'), request: requestArbitrary }),
    requestArbitrary.map((request) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request })),
  );

  it('either rejects the body as malformed or answers for the same uid, never throwing anything else', () => {
    fc.assert(
      fc.property(bodyArbitrary, (body) => {
        let request;
        try {
          request = readAdmissionReview(body);
        } catch (err) {
          expect(err).toBeInstanceOf(MalformedReviewError);
          return;
        }
        const { response, outcome } = admit(request, config);
        expect(response.uid).toBe(request.uid);
        expect(['injected', 'skipped', 'refused']).toContain(outcome);
        expect(response.allowed).toBe(outcome !== 'refused');
        if (!response.allowed) expect(response.status?.code).toBe(400);
      }),
      { numRuns: 400 },
    );
  });
});

describe('diffPatch (fast-check)', () => {
  it('yields the same operations as fast-json-patch compare(), for injections and for arbitrary JSON', () => {
    const asJson = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;
    fc.assert(
      fc.property(podArbitrary, (pod) => {
        const result = inject(pod, config);
        if (result.kind !== 'injected') return;
        expect(asJson(diffPatch(pod, result.pod))).toEqual(asJson(jsonpatch.compare(pod, result.pod)));
      }),
      { numRuns: 200 },
    );
    // Objects at the root, as pods are (arrays and every JSON value occur inside).
    const tree = fc.object({ key: fc.string().filter((k) => k !== '__proto__'), values: [fc.jsonValue(), fc.array(fc.jsonValue())] });
    fc.assert(
      fc.property(tree, tree, (a, b) => {
        const patch = diffPatch(a, b);
        expect(asJson(patch)).toEqual(asJson(jsonpatch.compare(a, b)));
        expect(asJson(applyPatch(a, patch))).toEqual(asJson(b));
      }),
      { numRuns: 300 },
    );
  });
});
