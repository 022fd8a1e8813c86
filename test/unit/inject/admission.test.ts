import { describe, expect, it } from '@jest/globals';
import { admit } from '../../../src/admission.js';
import { readAdmissionReview, type AdmissionRequest } from '../../../src/admissionReview.js';
import { defaultInjectorConfig } from '../../../src/config.js';
import { applyPatch, type PatchOperation } from '../../../src/patch.js';

const config = { ...defaultInjectorConfig('1.0.0'), zookeeper: 'zk:2181' };
const podObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'web-', labels: { app: 'web' }, annotations: { 'zkleader.io/inject': 'true' } },
  spec: { containers: [{ name: 'web', image: 'web:1' }] },
};

function review(request: Record<string, unknown>): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'shop', object: podObject, ...request },
  };
}

function request(overrides: Record<string, unknown> = {}): AdmissionRequest {
  return readAdmissionReview(review(overrides));
}

describe('readAdmissionReview', () => {
  it.each([
    [null, 'expected an AdmissionReview object, got null'],
    [[], 'expected an AdmissionReview object, got object'],
    [{ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview' }, 'apiVersion: expected "admission.k8s.io/v1", got "admission.k8s.io/v1beta1"'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'Review' }, 'kind: expected "AdmissionReview", got "Review"'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 'request: expected an object (the AdmissionRequest)'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: '' } }, 'request.uid: expected a non-empty string'],
    [review({ kind: 'Pod' }), 'request.kind: expected {group, version, kind} strings'],
    [review({ operation: 1 }), 'request.operation: expected a string such as "CREATE"'],
    [review({ namespace: 7 }), 'request.namespace: expected a string'],
  ])('refuses %j, naming the field', (body, message) => {
    expect(() => readAdmissionReview(body)).toThrow(message);
  });
});

describe('admit', () => {
  it('answers with the request uid and a base64 JSON patch that injects the pod', () => {
    const { response, outcome } = admit(request(), config);
    expect(outcome).toBe('injected');
    expect(response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const patch = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString()) as PatchOperation[];
    const pod = applyPatch(podObject, patch);
    expect(pod.metadata.labels).toEqual({ app: 'web', 'zkleader.io/role': 'follower', 'zkleader.io/election': 'web' });
  });

  it.each([
    [{ operation: 'UPDATE' }, 'not-create'],
    [{ kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, 'not-a-pod'],
    [{ subResource: 'binding' }, 'subresource'],
    [{ object: { ...podObject, metadata: {} } }, 'not-requested'],
  ])('allows %j untouched (%s)', (overrides, reason) => {
    expect(admit(request(overrides), config)).toEqual({ response: { uid: 'u-1', allowed: true }, outcome: 'skipped', reason });
  });

  it('leaves an unreadable pod to the API server validation, with a warning', () => {
    const { response, outcome, reason } = admit(request({ object: { spec: { containers: 'web' } } }), config);
    expect(outcome).toBe('skipped');
    expect(reason).toBe('unreadable-pod');
    expect(response).toEqual({ uid: 'u-1', allowed: true, warnings: ['zkleader did not inject: request.object.spec.containers: expected a list'] });
  });

  it('denies with code 400 and a message naming the annotation', () => {
    const object = { ...podObject, metadata: { ...podObject.metadata, annotations: { 'zkleader.io/inject': 'true', 'zkleader.io/session-timeout': '1h', 'zkleader.io/x': '' } } };
    expect(admit(request({ object }), config)).toEqual({
      outcome: 'refused',
      reason: 'annotation zkleader.io/session-timeout: expected a duration such as "10s" or "10000ms", got "1h"',
      response: {
        uid: 'u-1',
        allowed: false,
        status: { code: 400, message: 'zkleader: annotation zkleader.io/session-timeout: expected a duration such as "10s" or "10000ms", got "1h"' },
        warnings: ['unknown annotation zkleader.io/x is ignored (a typo?)'],
      },
    });
  });
});
