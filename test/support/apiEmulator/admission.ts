import type { StoredObject } from './resources.js';
import type { UserInfo } from './serviceAccountTokens.js';

/** What an admission step learns about the request (the attributes of an AdmissionReview). */
export interface AdmissionAttributes {
  operation: 'CREATE';
  resource: string;
  group: string;
  version: string;
  namespace: string | undefined;
  userName: string;
  /** Who sent the request: `userInfo` of the AdmissionReview. */
  userInfo: UserInfo;
  dryRun: boolean;
  /** Where a step adds the warnings the apiserver returns as `Warning` response headers. */
  warnings: string[];
  /** Shared by the steps across the two runs of the chain (set by AdmissionChain.admit). */
  reinvocation: ReinvocationContext;
}

/**
 * k8s.io/apiserver/pkg/admission/reinvocation.go: when a step (the webhook stage) changed
 * the object, it asks for one more run of the whole chain; in-tree plugins then run again,
 * and the webhook stage calls again the webhooks whose reinvocationPolicy asks for it.
 */
export interface ReinvocationContext {
  /** True during the second run. */
  isReinvoke: boolean;
  /** Set by a step that wants the chain run once more. */
  shouldReinvoke: boolean;
  /** Per-step state kept from the first run to the second. */
  readonly values: Map<unknown, unknown>;
}

/**
 * One mutating admission step, run as the apiserver runs mutating admission: after the
 * namespace is set and before the name is generated, uid assigned and the object
 * validated. It returns the (possibly changed) object, or throws an ApiError to deny.
 * The webhook caller of issue 6 is one such step.
 */
export type AdmissionStep = (obj: StoredObject, attributes: AdmissionAttributes) => StoredObject | Promise<StoredObject>;

/**
 * The ordered steps registered for one resource's create, run as the apiserver runs its
 * mutating admission chain: in order, and all of them a second time when a step asked for
 * reinvocation. Only a second run: a change made during it asks for nothing more (the
 * apiserver's reinvoker calls the chain at most twice).
 *
 * Reinvocation of in-tree plugins, modelled on purpose: the webhook dispatcher asks for
 * the second run whenever any webhook's patch changed the object, whatever the webhooks'
 * reinvocationPolicy (mutating/dispatcher.go calls SetShouldReinvoke on every change), and
 * the reinvoker then runs every mutating plugin again ("built-in mutating admission plugins
 * are re-run if a mutating webhook modifies an object", Dynamic Admission Control docs,
 * from the webhook reinvocation KEP). So the ServiceAccount plugin mounts its token into
 * containers a webhook added, unless they already mount something at its path; and steps
 * added with onPodCreate run twice too. Of the webhooks, only IfNeeded ones run again.
 */
export class AdmissionChain {
  private steps: AdmissionStep[] = [];

  add(step: AdmissionStep): () => void {
    this.steps.push(step);
    return () => {
      this.steps = this.steps.filter((s) => s !== step);
    };
  }

  async admit(obj: StoredObject, request: Omit<AdmissionAttributes, 'reinvocation'>): Promise<StoredObject> {
    const attributes: AdmissionAttributes = { ...request, reinvocation: { isReinvoke: false, shouldReinvoke: false, values: new Map() } };
    const steps = [...this.steps];
    let current = obj;
    for (const step of steps) current = await step(structuredClone(current), attributes);
    if (attributes.reinvocation.shouldReinvoke) {
      attributes.reinvocation.isReinvoke = true;
      for (const step of steps) current = await step(structuredClone(current), attributes);
    }
    return current;
  }
}
