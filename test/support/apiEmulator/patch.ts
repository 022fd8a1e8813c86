import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { badRequest, unprocessablePatch, unsupportedMediaType } from './status.js';

export const patchContentTypes = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
] as const;
export type PatchContentType = (typeof patchContentTypes)[number];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/**
 * Applies a PATCH body to a stored object by its Content-Type, returning a new
 * object (the stored one is not touched). Throws 415 for other content types,
 * 400 for a malformed patch and 422 for one that does not apply, as the apiserver does.
 */
export function applyPatch(contentType: string, original: object, patch: unknown): object {
  const base = structuredClone(original) as JsonObject;
  switch (mediaType(contentType)) {
    case 'application/json-patch+json':
      return applyJsonPatch(base, patch);
    case 'application/merge-patch+json':
      return mergePatch(base, requireObject(patch)) as JsonObject;
    case 'application/strategic-merge-patch+json':
      return strategicMerge(base, requireObject(patch), '') as JsonObject;
    default:
      throw unsupportedMediaType(contentType, patchContentTypes);
  }
}

function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

function requireObject(patch: unknown): JsonObject {
  if (!isObject(patch)) throw badRequest(`a merge patch must be a JSON object, got ${Array.isArray(patch) ? 'an array' : typeof patch}`);
  return patch;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JsonPatchError names for a patch that is well-formed but does not fit the document. */
const doesNotApply = new Set([
  'TEST_OPERATION_FAILED',
  'OPERATION_PATH_UNRESOLVABLE',
  'OPERATION_FROM_UNRESOLVABLE',
  'OPERATION_PATH_CANNOT_ADD',
  'OPERATION_PATH_ILLEGAL_ARRAY_INDEX',
  'OPERATION_VALUE_OUT_OF_BOUNDS',
]);

function applyJsonPatch(base: JsonObject, patch: unknown): object {
  if (!Array.isArray(patch)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  const ops = patch as Operation[];
  try {
    return jsonpatch.applyPatch(base, ops, true, true, true).newDocument;
  } catch (err) {
    if (!(err instanceof jsonpatch.JsonPatchError)) throw err;
    const op = err.operation as Partial<Operation> | undefined;
    if (err.name === 'TEST_OPERATION_FAILED') throw unprocessablePatch(`testing value ${op?.path ?? ''} failed: test failed`);
    if (doesNotApply.has(err.name)) {
      throw unprocessablePatch(`jsonpatch ${op?.op ?? ''} operation does not apply: doc is missing path: "${op?.path ?? ''}": missing value`);
    }
    throw badRequest(`invalid JSON patch: ${err.message.split('\n')[0] ?? err.name}`);
  }
}

/** RFC 7386: objects merge recursively, null deletes, everything else replaces. */
function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key] ?? null, value);
  }
  return result;
}

/**
 * The list fields of the objects we serve that merge by a key under a strategic
 * merge patch (from the `patchMergeKey` tags of k8s.io/api); other lists replace.
 */
const mergeKeys: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  imagePullSecrets: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  ownerReferences: 'uid',
  conditions: 'type',
};
/** Primitive lists with `patchStrategy:"merge"`: the patch's items are added to the set. */
const mergedPrimitiveLists = new Set(['finalizers']);

/**
 * Strategic merge patch for the subset kubectl and client libraries send to these
 * resources: maps merge (null deletes), keyed lists merge by key with `$patch: delete`
 * and `$patch: replace`, `$setElementOrder/...` and `$retainKeys` are accepted and ignored.
 */
function strategicMerge(target: Json, patch: Json, field: string): Json {
  if (Array.isArray(patch)) return mergeList(Array.isArray(target) ? target : [], patch, field);
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _ignored, ...rest } = patch;
    return structuredClone(rest);
  }
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$setElementOrder/') || key === '$retainKeys' || key === '$patch') continue;
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const listKey = key.slice('$deleteFromPrimitiveList/'.length);
      const drop = Array.isArray(value) ? value : [];
      const current = result[listKey];
      if (Array.isArray(current)) result[listKey] = current.filter((v) => !drop.includes(v));
      continue;
    }
    if (value === null) delete result[key];
    else result[key] = strategicMerge(result[key] ?? null, value, key);
  }
  return result;
}

function mergeList(target: Json[], patch: Json[], field: string): Json[] {
  if (mergedPrimitiveLists.has(field)) return [...target, ...patch.filter((v) => !target.includes(v))];
  const key = mergeKeys[field];
  if (!key) return structuredClone(patch);
  if (patch.some((item) => isObject(item) && item.$patch === 'replace')) {
    return patch.filter((item) => !(isObject(item) && item.$patch === 'replace')).map((item) => structuredClone(item));
  }
  const result = target.map((item) => structuredClone(item));
  for (const item of patch) {
    if (!isObject(item) || item[key] === undefined) throw badRequest(`map: ${JSON.stringify(item)} does not contain declared merge key: ${key}`);
    const at = result.findIndex((existing) => isObject(existing) && existing[key] === item[key]);
    if (item.$patch === 'delete') {
      if (at >= 0) result.splice(at, 1);
    } else if (at >= 0) {
      result[at] = strategicMerge(result[at] ?? null, item, field);
    } else {
      result.push(strategicMerge(null, item, field));
    }
  }
  return result;
}
