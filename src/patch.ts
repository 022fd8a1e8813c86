import jsonpatch, { type Operation } from 'fast-json-patch';

export type PatchOperation = Operation;

/**
 * The JSON patch from the pod as admitted to the pod as injected: a diff, so the
 * webhook's patch and the offline output cannot disagree. Keys such as
 * `zkleader.io/status` are escaped to `zkleader.io~1status` (RFC 6901).
 */
export function diffPatch(original: object, injected: object): PatchOperation[] {
  return jsonpatch.compare(original, injected);
}

/** Applies a patch to a copy (tests and the offline command compare results with it). */
export function applyPatch<T extends object>(document: T, patch: readonly PatchOperation[]): T {
  return jsonpatch.applyPatch(structuredClone(document), [...patch], true, false).newDocument;
}
