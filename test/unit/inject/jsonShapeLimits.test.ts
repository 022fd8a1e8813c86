import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { JSON_SHAPE_LIMITS } from '../../../src/admissionLimits.js';
import { checkJsonShape, describeJsonShapeViolation, JsonShapeScanner, type JsonShapeLimits } from '../../../src/jsonShape.js';

const loose: JsonShapeLimits = { maxDepth: 1_000, maxContainers: 1_000_000, maxMembers: 1_000_000 };

/** What the scan must count, from the parsed value. */
function shape(value: unknown): { depth: number; containers: number; members: number } {
  if (typeof value !== 'object' || value === null) return { depth: 0, containers: 0, members: 0 };
  const children = Array.isArray(value) ? value : Object.values(value as Record<string, unknown>);
  let depth = 0;
  let containers = 1;
  let members = Array.isArray(value) ? 0 : children.length;
  for (const child of children) {
    const inner = shape(child);
    depth = Math.max(depth, inner.depth);
    containers += inner.containers;
    members += inner.members;
  }
  return { depth: depth + 1, containers, members };
}

/** The scan of `text` fed in the given chunk sizes (a cycle), as a body arrives. */
function scanInChunks(text: string, sizes: number[], limits: JsonShapeLimits) {
  const bytes = Buffer.from(text);
  const scanner = new JsonShapeScanner(limits);
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length] ?? 1);
    const violation = scanner.push(bytes.subarray(at, at + size));
    if (violation) return violation;
    at += size;
  }
  return undefined;
}

const check = (text: string, limits: Partial<JsonShapeLimits>) => checkJsonShape(Buffer.from(text), { ...loose, ...limits });

describe('checkJsonShape', () => {
  it('passes a document at each limit and refuses one past it, naming the limit', () => {
    expect(check('[[[]]]', { maxDepth: 3 })).toBeUndefined();
    expect(check('[[[[]]]]', { maxDepth: 3 })).toEqual({ limit: 'depth', max: 3, offset: 3 });
    expect(check('[{},[],{}]', { maxContainers: 4 })).toBeUndefined();
    expect(check('[{},[],{},[]]', { maxContainers: 4 })).toEqual({ limit: 'containers', max: 4, offset: 10 });
    expect(check('{"a":1,"b":{"c":2}}', { maxMembers: 3 })).toBeUndefined();
    expect(check('{"a":1,"b":{"c":2,"d":3}}', { maxMembers: 3 })).toEqual({ limit: 'members', max: 3, offset: 21 });
  });

  it('does not count brackets, braces and colons inside strings, whatever their escapes', () => {
    const limits = { maxDepth: 1, maxContainers: 1, maxMembers: 1 };
    for (const text of [
      '{"a":"[[[{{{:::"}',
      '{"a\\"[[":"]"}',
      '{"a":"\\\\"}',
      '{"a":"\\\\\\"[{"}',
      '{"\\u005b\\u007b":"\\\\\\\\"}',
      '{"ключ[":"значение{:"}',
      '{"😀[":"\\ud83d\\ude00{"}',
    ]) {
      expect(JSON.parse(text)).toBeDefined();
      expect({ text, violation: checkJsonShape(Buffer.from(text), limits) }).toEqual({ text, violation: undefined });
    }
    // After a string ending in an escaped backslash, a bracket is structure again.
    expect(check('["\\\\",[]]', { maxDepth: 1 })).toMatchObject({ limit: 'depth' });
    // An escaped quote does not end the string: the bracket after it is text.
    expect(check('["\\"[",1]', { maxDepth: 1 })).toBeUndefined();
  });

  it('refuses a deep nest at the first byte past the limit, without reading on', () => {
    const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
    expect(check(deep, { maxDepth: 64 })).toEqual({ limit: 'depth', max: 64, offset: 64 });
  });

  it('counts exactly what JSON.parse builds, for any JSON and any split into chunks (fast-check)', () => {
    // Strings made of what a scan could mistake for structure, escapes and multi-byte text.
    const tricky = fc.constantFrom('"', '\\', '[', ']', '{', '}', ':', ',', 'a', '\n', 'é', '😀', '\u2028');
    const json = fc.oneof(fc.jsonValue(), fc.jsonValue({ stringUnit: tricky }), fc.jsonValue({ stringUnit: 'binary' }));
    fc.assert(
      fc.property(json, fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 5 }), (value, sizes) => {
        const text = JSON.stringify(value);
        const expected = shape(value);
        expect(scanInChunks(text, sizes, loose)).toBeUndefined();
        expect(scanInChunks(text, sizes, { ...loose, maxDepth: expected.depth, maxContainers: expected.containers, maxMembers: expected.members })).toBeUndefined();
        if (expected.depth > 0) expect(scanInChunks(text, sizes, { ...loose, maxDepth: expected.depth - 1 })).toMatchObject({ limit: 'depth' });
        if (expected.containers > 0) expect(scanInChunks(text, sizes, { ...loose, maxContainers: expected.containers - 1 })).toMatchObject({ limit: 'containers' });
        if (expected.members > 0) expect(scanInChunks(text, sizes, { ...loose, maxMembers: expected.members - 1 })).toMatchObject({ limit: 'members' });
      }),
      { numRuns: 500 },
    );
  });

  it('gives the same answer whether an escape, a string or a bracket is split between chunks', () => {
    const text = '{"a":"x\\\\","b\\"[":[["\\u0041"],[]],"c":"]"}';
    const whole = checkJsonShape(Buffer.from(text), { ...loose, maxDepth: 2 });
    expect(whole).toMatchObject({ limit: 'depth' });
    for (let split = 1; split < text.length; split++) {
      for (let second = split + 1; second <= text.length; second++) {
        const bytes = Buffer.from(text);
        const scanner = new JsonShapeScanner({ ...loose, maxDepth: 2 });
        const violation = scanner.push(bytes.subarray(0, split)) ?? scanner.push(bytes.subarray(split, second)) ?? scanner.push(bytes.subarray(second));
        expect({ split, second, violation }).toEqual({ split, second, violation: whole });
      }
    }
  });

  it("lets a real pod's review through with the webhook's limits", () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'orders-0', annotations: { 'zkleader.io/inject': 'true', big: 'x'.repeat(1024 * 1024) } },
      spec: {
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }] } } },
        containers: Array.from({ length: 10 }, (_, c) => ({
          name: `c${c}`,
          image: 'app',
          env: Array.from({ length: 100 }, (_, e) => ({ name: `VAR_${e}`, value: String(e) })),
        })),
      },
    };
    const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', object: pod } };
    expect(checkJsonShape(Buffer.from(JSON.stringify(review)), JSON_SHAPE_LIMITS)).toBeUndefined();
  });

  it('describes a violation by its limit', () => {
    expect(describeJsonShapeViolation({ limit: 'depth', max: 64, offset: 70 })).toBe('JSON nested deeper than 64 levels (at byte 70)');
    expect(describeJsonShapeViolation({ limit: 'containers', max: 50_000, offset: 9 })).toBe('more than 50000 JSON objects and arrays (at byte 9)');
    expect(describeJsonShapeViolation({ limit: 'members', max: 50_000, offset: 9 })).toBe('more than 50000 JSON object members (at byte 9)');
  });
});
