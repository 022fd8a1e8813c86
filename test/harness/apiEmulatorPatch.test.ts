import { describe, expect, test } from '@jest/globals';
import { applyPatch } from '../support/apiEmulator/patch.js';
import { ApiError } from '../support/apiEmulator/status.js';

const strategic = 'application/strategic-merge-patch+json';
const merge = 'application/merge-patch+json';
const json = 'application/json-patch+json';

function podSpec(): object {
  return {
    metadata: { name: 'p', finalizers: ['a'] },
    spec: {
      containers: [
        { name: 'app', image: 'app:1', volumeMounts: [{ name: 'data', mountPath: '/data' }], env: [{ name: 'A', value: '1' }] },
        { name: 'side', image: 'side:1' },
      ],
      tolerations: [{ key: 'x', operator: 'Exists' }],
    },
  };
}

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err.status.code;
    throw err;
  }
  return undefined;
}

describe('strategic merge patch', () => {
  test('merges keyed lists by their key, recursively, and replaces lists without a merge key', () => {
    const out = applyPatch(strategic, podSpec(), {
      spec: {
        containers: [{ name: 'app', volumeMounts: [{ mountPath: '/data', readOnly: true }], env: [{ name: 'B', value: '2' }] }],
        tolerations: [{ key: 'y', operator: 'Exists' }],
      },
    });
    expect(out).toMatchObject({
      spec: {
        containers: [
          { name: 'app', image: 'app:1', volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: true }], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] },
          { name: 'side', image: 'side:1' },
        ],
        tolerations: [{ key: 'y', operator: 'Exists' }],
      },
    });
  });

  test('$patch: delete removes a list item, $patch: replace replaces the list, finalizers merge as a set', () => {
    const deleted = applyPatch(strategic, podSpec(), { spec: { containers: [{ name: 'side', $patch: 'delete' }] }, metadata: { finalizers: ['b', 'a'] } });
    expect(deleted).toMatchObject({ metadata: { finalizers: ['a', 'b'] }, spec: { containers: [{ name: 'app' }] } });
    expect((deleted as { spec: { containers: unknown[] } }).spec.containers).toHaveLength(1);
    const replaced = applyPatch(strategic, podSpec(), { spec: { containers: [{ name: 'only', image: 'x' }, { $patch: 'replace' }] } });
    expect((replaced as { spec: { containers: unknown[] } }).spec.containers).toEqual([{ name: 'only', image: 'x' }]);
  });

  test('a keyed list item without its merge key is a 400', () => {
    expect(codeOf(() => applyPatch(strategic, podSpec(), { spec: { containers: [{ image: 'x' }] } }))).toBe(400);
  });
});

describe('merge patch (RFC 7386)', () => {
  test('nested null deletes, lists replace, the original is not modified', () => {
    const original = podSpec();
    const snapshot = JSON.stringify(original);
    const out = applyPatch(merge, original, { metadata: { finalizers: null }, spec: { containers: [{ name: 'new', image: 'n' }] } });
    expect(out).toEqual({ metadata: { name: 'p' }, spec: { containers: [{ name: 'new', image: 'n' }], tolerations: [{ key: 'x', operator: 'Exists' }] } });
    expect(JSON.stringify(original)).toBe(snapshot);
  });

  test('a body that is not an object is a 400', () => {
    expect(codeOf(() => applyPatch(merge, podSpec(), [1]))).toBe(400);
  });
});

describe('JSON patch (RFC 6902)', () => {
  test('a malformed operation is 400, an operation on a missing path is 422, an unknown content type is 415', () => {
    expect(codeOf(() => applyPatch(json, podSpec(), [{ op: 'frobnicate', path: '/x' }]))).toBe(400);
    expect(codeOf(() => applyPatch(json, podSpec(), { op: 'add' }))).toBe(400);
    expect(codeOf(() => applyPatch(json, podSpec(), [{ op: 'replace', path: '/metadata/labels/a', value: 'b' }]))).toBe(422);
    expect(codeOf(() => applyPatch('application/apply-patch+yaml', podSpec(), {}))).toBe(415);
  });
});
