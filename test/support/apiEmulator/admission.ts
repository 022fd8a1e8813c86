import type { StoredObject } from './resources.js';

/** What an admission step learns about the request (the attributes of an AdmissionReview). */
export interface AdmissionAttributes {
  operation: 'CREATE';
  resource: string;
  group: string;
  version: string;
  namespace: string | undefined;
  userName: string;
  dryRun: boolean;
  /** Where a step adds the warnings the apiserver returns as `Warning` response headers. */
  warnings: string[];
}

/**
 * One mutating admission step, run as the apiserver runs mutating admission: after the
 * namespace is set and before the name is generated, uid assigned and the object
 * validated. It returns the (possibly changed) object, or throws an ApiError to deny.
 * The webhook caller of issue 6 is one such step.
 */
export type AdmissionStep = (obj: StoredObject, attributes: AdmissionAttributes) => StoredObject | Promise<StoredObject>;

/** The ordered steps registered for one resource's create. */
export class AdmissionChain {
  private steps: AdmissionStep[] = [];

  add(step: AdmissionStep): () => void {
    this.steps.push(step);
    return () => {
      this.steps = this.steps.filter((s) => s !== step);
    };
  }

  async admit(obj: StoredObject, attributes: AdmissionAttributes): Promise<StoredObject> {
    let current = obj;
    for (const step of this.steps) current = await step(structuredClone(current), attributes);
    return current;
  }
}
