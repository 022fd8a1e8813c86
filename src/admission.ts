import type { V1Pod } from '@kubernetes/client-node';
import type { AdmissionRequest, AdmissionResponse } from './admissionReview.js';
import type { InjectorConfig } from './config.js';
import { inject } from './inject.js';
import { diffPatch } from './patch.js';
import { readPod } from './podShape.js';

export type Outcome = 'injected' | 'skipped' | 'refused';

export interface Admission {
  response: AdmissionResponse;
  outcome: Outcome;
  /** Why a pod was skipped, or the refusal's message. */
  reason?: string;
}

function skipped(uid: string, reason: string, warnings: string[] = []): Admission {
  return { response: { uid, allowed: true, ...(warnings.length > 0 && { warnings }) }, outcome: 'skipped', reason };
}

/** Decides one AdmissionRequest: only CREATE of core/v1 pods is looked at; everything else is allowed untouched. */
export function admit(request: AdmissionRequest, config: InjectorConfig): Admission {
  const { uid } = request;
  if (request.kind.group !== '' || request.kind.version !== 'v1' || request.kind.kind !== 'Pod') return skipped(uid, 'not-a-pod');
  if (request.subResource !== undefined && request.subResource !== '') return skipped(uid, 'subresource');
  if (request.operation !== 'CREATE') return skipped(uid, 'not-create');
  let pod: V1Pod;
  try {
    pod = readPod(request.object, 'request.object');
  } catch (err) {
    // The API server validates pods after mutating admission: let it refuse this one in its own words.
    return skipped(uid, 'unreadable-pod', [`zkleader did not inject: ${(err as Error).message}`]);
  }
  const result = inject(pod, config);
  const warnings = result.warnings.length > 0 ? { warnings: result.warnings } : {};
  switch (result.kind) {
    case 'skipped':
      return skipped(uid, result.reason, result.warnings);
    case 'refused':
      return {
        response: { uid, allowed: false, status: { code: result.code, message: `zkleader: ${result.message}` }, ...warnings },
        outcome: 'refused',
        reason: result.message,
      };
    case 'injected': {
      const patch = Buffer.from(JSON.stringify(diffPatch(pod, result.pod))).toString('base64');
      return { response: { uid, allowed: true, patchType: 'JSONPatch', patch, ...warnings }, outcome: 'injected' };
    }
  }
}
