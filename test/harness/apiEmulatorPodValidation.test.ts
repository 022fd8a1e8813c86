import { describe, expect, test } from '@jest/globals';
import { validatePod } from '../support/apiEmulator/podValidation.js';

/** A pod in the shape zkleader injects: a native sidecar, a shared volume, downward-API env. */
function injectedPod(): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'orders-0', namespace: 'shop', labels: { app: 'orders', 'zkleader.io/role': 'follower' }, annotations: { 'zkleader.io/inject': 'true' } },
    spec: {
      initContainers: [
        {
          name: 'zkleader',
          image: 'zkleader:dev',
          restartPolicy: 'Always',
          startupProbe: { httpGet: { path: '/readyz', port: 4040 } },
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'APP_LABEL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          ],
          volumeMounts: [{ name: 'zkleader', mountPath: '/var/run/zkleader' }],
        },
      ],
      containers: [{ name: 'app', image: 'nginx', volumeMounts: [{ name: 'zkleader', mountPath: '/var/run/zkleader', readOnly: true }] }],
      volumes: [{ name: 'zkleader', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }],
    },
  };
}

type Mutation = (pod: { metadata: Record<string, unknown>; spec: Record<string, unknown[]> }) => void;

function podWith(mutate: Mutation): unknown {
  const pod = injectedPod();
  mutate(pod as Parameters<Mutation>[0]);
  return pod;
}

function container(pod: Parameters<Mutation>[0], list: 'containers' | 'initContainers', i: number): Record<string, unknown> {
  return pod.spec[list]?.[i] as Record<string, unknown>;
}

describe('validatePod', () => {
  test('accepts the injected shape: native sidecar with startupProbe, downward API env, shared emptyDir', () => {
    expect(validatePod(injectedPod())).toEqual([]);
  });

  test("accepts a cold standby's startupProbe that never gives up (failureThreshold 2147483647)", () => {
    const standby = podWith((p) => void (container(p, 'initContainers', 0).startupProbe = { httpGet: { path: '/startz', port: 4040 }, periodSeconds: 1, failureThreshold: 2_147_483_647 }));
    expect(validatePod(standby)).toEqual([]);
  });

  test.each<[string, Mutation, { field: string; reason: string; message?: RegExp }]>([
    ['schema: containers missing', (p) => void delete p.spec.containers, { field: 'spec.containers', reason: 'FieldValueRequired' }],
    [
      'schema: wrong type',
      (p) => void (container(p, 'containers', 0).image = 7),
      { field: 'spec.containers[0].image', reason: 'FieldValueTypeInvalid', message: /must be of type string/ },
    ],
    [
      'duplicate container name across init and regular containers',
      (p) => void (container(p, 'initContainers', 0).name = 'app'),
      { field: 'spec.initContainers[0].name', reason: 'FieldValueDuplicate', message: /^Duplicate value: "app"$/ },
    ],
    [
      'duplicate regular container name',
      (p) => void p.spec.containers?.push({ name: 'app', image: 'x' }),
      { field: 'spec.containers[1].name', reason: 'FieldValueDuplicate' },
    ],
    [
      'mount naming no volume',
      (p) => void (p.spec.volumes = []),
      { field: 'spec.initContainers[0].volumeMounts[0].name', reason: 'FieldValueNotFound', message: /^Not found: "zkleader"$/ },
    ],
    [
      'duplicate volume name',
      (p) => void p.spec.volumes?.push({ name: 'zkleader', emptyDir: {} }),
      { field: 'spec.volumes[1].name', reason: 'FieldValueDuplicate' },
    ],
    [
      'duplicate mount path in one container',
      (p) => void (container(p, 'containers', 0).volumeMounts as unknown[]).push({ name: 'zkleader', mountPath: '/var/run/zkleader' }),
      { field: 'spec.containers[0].volumeMounts[1].mountPath', reason: 'FieldValueInvalid', message: /must be unique/ },
    ],
    [
      'bad label key',
      (p) => void (p.metadata.labels = { 'bad key!': 'x' }),
      { field: 'metadata.labels', reason: 'FieldValueInvalid', message: /^Invalid value: "bad key!": name part must consist of/ },
    ],
    [
      'label value longer than 63',
      (p) => void (p.metadata.labels = { app: 'a'.repeat(64) }),
      { field: 'metadata.labels', reason: 'FieldValueInvalid', message: /must be no more than 63 characters/ },
    ],
    [
      'label key prefix not a DNS subdomain',
      (p) => void (p.metadata.labels = { 'Zk_Leader/role': 'x' }),
      { field: 'metadata.labels', reason: 'FieldValueInvalid', message: /prefix part a lowercase RFC 1123 subdomain/ },
    ],
    [
      'bad annotation key',
      (p) => void (p.metadata.annotations = { 'a/b/c': 'x' }),
      { field: 'metadata.annotations', reason: 'FieldValueInvalid', message: /a qualified name must consist/ },
    ],
    [
      'metadata.name not a DNS-1123 subdomain',
      (p) => void (p.metadata.name = 'Orders_0'),
      { field: 'metadata.name', reason: 'FieldValueInvalid', message: /RFC 1123 subdomain/ },
    ],
    ['metadata.name missing', (p) => void delete p.metadata.name, { field: 'metadata.name', reason: 'FieldValueRequired' }],
    [
      'restartPolicy on a regular container',
      (p) => void (container(p, 'containers', 0).restartPolicy = 'Always'),
      { field: 'spec.containers[0].restartPolicy', reason: 'FieldValueForbidden' },
    ],
    [
      'init container restartPolicy other than Always',
      (p) => void (container(p, 'initContainers', 0).restartPolicy = 'OnFailure'),
      { field: 'spec.initContainers[0].restartPolicy', reason: 'FieldValueNotSupported', message: /supported values: "Always"/ },
    ],
    [
      'startupProbe on a plain init container',
      (p) => void delete container(p, 'initContainers', 0).restartPolicy,
      { field: 'spec.initContainers[0].startupProbe', reason: 'FieldValueForbidden' },
    ],
    [
      'bad env var name',
      (p) => void (container(p, 'containers', 0).env = [{ name: '1BAD', value: 'x' }]),
      { field: 'spec.containers[0].env[0].name', reason: 'FieldValueInvalid' },
    ],
    [
      'unsupported fieldRef path',
      (p) => void (container(p, 'containers', 0).env = [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.containers' } } }]),
      { field: 'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath', reason: 'FieldValueNotSupported', message: /"status.podIP"/ },
    ],
    [
      'containerPort out of range',
      (p) => void (container(p, 'containers', 0).ports = [{ containerPort: 70000 }]),
      { field: 'spec.containers[0].ports[0].containerPort', reason: 'FieldValueInvalid' },
    ],
    ['volume without a source', (p) => void (p.spec.volumes = [{ name: 'zkleader' }]), { field: 'spec.volumes[0]', reason: 'FieldValueRequired' }],
    [
      'startupProbe failureThreshold beyond int32 (a cold standby takes 2147483647, the most there is)',
      (p) => void (container(p, 'initContainers', 0).startupProbe = { httpGet: { path: '/startz', port: 4040 }, failureThreshold: 2_147_483_648 }),
      // The OpenAPI schema's int32 format (the apiserver cannot even decode it into its int32 field).
      { field: 'spec.initContainers[0].startupProbe.failureThreshold', reason: 'FieldValueInvalid', message: /format/ },
    ],
    [
      'negative probe periodSeconds',
      (p) => void (container(p, 'initContainers', 0).startupProbe = { httpGet: { path: '/startz', port: 4040 }, periodSeconds: -1 }),
      { field: 'spec.initContainers[0].startupProbe.periodSeconds', reason: 'FieldValueInvalid', message: /greater than or equal to 0/ },
    ],
    [
      'startupProbe successThreshold other than 1',
      (p) => void (container(p, 'initContainers', 0).startupProbe = { httpGet: { path: '/startz', port: 4040 }, successThreshold: 2 }),
      { field: 'spec.initContainers[0].startupProbe.successThreshold', reason: 'FieldValueInvalid', message: /^Invalid value: 2: must be 1$/ },
    ],
  ])('%s', (_name, mutate, expected) => {
    const causes = validatePod(podWith(mutate));
    expect(causes).toContainEqual(expect.objectContaining({ field: expected.field, reason: expected.reason }));
    if (expected.message) expect(causes.find((c) => c.field === expected.field)?.message).toMatch(expected.message);
  });

  test('a non-object is refused rather than thrown on', () => {
    expect(validatePod('pod')).toEqual([expect.objectContaining({ reason: 'FieldValueTypeInvalid' })]);
    expect(validatePod(null)).toHaveLength(1);
  });
});
