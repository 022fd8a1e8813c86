import { randomUUID } from 'node:crypto';
import type { V1MutatingWebhook, V1MutatingWebhookConfiguration, V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AdmissionAttributes, AdmissionStep } from './admission.js';
import { canonicalJson } from './canonicalJson.js';
import { applyPatch } from './patch.js';
import type { StoredObject } from './resources.js';
import { evaluateMatchConditions } from './matchConditions.js';
import { admissionForbidden, ApiError, internalError } from './status.js';
import { callWebhook, webhookEndpoint, WebhookCallError, type AdmissionResponse, type ServiceResolver } from './webhookCall.js';
import { webhookMatches } from './webhookMatching.js';

export type { ServiceResolver } from './webhookCall.js';

/** What the chain reads from the emulator on every create: the registered configurations and namespace labels. */
export interface WebhookRegistry {
  mutatingWebhookConfigurations(): V1MutatingWebhookConfiguration[];
  getNamespace(name: string): V1Namespace | undefined;
}

export interface WebhookAdmissionOptions {
  /** Where `clientConfig.service` webhooks are reached; without it they fail as unreachable. */
  serviceResolver?: ServiceResolver;
  /** Groups to send in `request.userInfo` in place of the requester's own. */
  userGroups?: string[];
  log?: Logger;
  /** The apiserver's defaulting, applied to the object after each webhook's patch (the emulator passes the pod defaults). */
  applyDefaults?: (obj: StoredObject) => void;
}

interface Invocation {
  id: string;
  webhook: V1MutatingWebhook;
}

/**
 * What the webhook stage keeps across the two runs of the admission chain
 * (mutating/reinvocationcontext.go): the object it last returned, the IfNeeded webhooks
 * called since the last change, and those to call again when the chain is reinvoked.
 */
interface WebhookReinvokeState {
  lastOutput: string | undefined;
  previouslyInvoked: Set<string>;
  reinvoke: Set<string>;
}

/** RequireReinvokingPreviouslyInvokedPlugins: who saw the object before this change must see it again. */
function requireReinvoking(state: WebhookReinvokeState): void {
  for (const id of state.previouslyInvoked) state.reinvoke.add(id);
  state.previouslyInvoked.clear();
}

/**
 * The mutating webhook stage of kube-apiserver for pod CREATE, as an admission step of
 * the emulator (k8s.io/apiserver/pkg/admission/plugin/webhook/mutating/dispatcher.go):
 * configurations in name order, webhooks in their listed order. Each webhook is matched
 * against the object as it stands when its turn comes (rules, namespaceSelector,
 * objectSelector, then its CEL matchConditions); a matching one gets an AdmissionReview
 * v1 over HTTPS trusting only its caBundle; a denial becomes the webhook's status, a
 * failed call a 500 (failurePolicy Fail) or nothing (Ignore); JSON patches are applied in
 * turn, each patched object defaulted again; warnings go to the response headers.
 *
 * Reinvocation, as in the apiserver: a webhook that changes the object asks for a second
 * run of the whole admission chain (AdmissionChain.admit), in which in-tree plugins (the
 * ServiceAccount plugin here) run again and, of the webhooks, only those with
 * reinvocationPolicy IfNeeded that were called before a later change (by a webhook, or
 * by an in-tree plugin in the second run) are called once more.
 */
export function webhookAdmissionStep(registry: WebhookRegistry, opts: WebhookAdmissionOptions = {}): AdmissionStep {
  const stateKey = Symbol('MutatingAdmissionWebhook');
  return async (obj, attributes) => {
    const rc = attributes.reinvocation;
    let state = rc.values.get(stateKey) as WebhookReinvokeState | undefined;
    if (!state) {
      state = { lastOutput: undefined, previouslyInvoked: new Set(), reinvoke: new Set() };
      rc.values.set(stateKey, state);
    }
    // In-tree plugins changed the object since the webhooks last saw it: every reinvocable webhook called so far sees it again.
    if (rc.isReinvoke && state.lastOutput !== canonicalJson(obj)) requireReinvoking(state);
    if (rc.isReinvoke && state.reinvoke.size > 0) opts.log?.debug({ webhooks: [...state.reinvoke] }, 'reinvoking webhooks after the object changed');
    const invocations = registry
      .mutatingWebhookConfigurations()
      .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
      .flatMap((config) => (config.webhooks ?? []).map((webhook, i): Invocation => ({ id: `${config.metadata?.name ?? ''}/${i}/${webhook.name}`, webhook })));
    const namespace = attributes.namespace;
    const namespaceLabels = namespace === undefined ? {} : (registry.getNamespace(namespace)?.metadata?.labels ?? { 'kubernetes.io/metadata.name': namespace });

    let current = obj;
    try {
      for (const invocation of invocations) {
        if (!shouldCallHook(invocation.webhook, current, attributes, namespaceLabels, opts)) continue;
        // A webhook is never called for the first time in the second run, nor again unless a later change asked for it.
        if (rc.isReinvoke && !state.reinvoke.has(invocation.id)) continue;
        const next = await invoke(invocation.webhook, current, attributes, opts);
        if (next !== current) {
          // Whether the patch changed the object is decided before defaulting; the next webhook sees the defaulted object.
          const changed = canonicalJson(next) !== canonicalJson(current);
          opts.applyDefaults?.(next);
          current = next;
          if (changed) {
            requireReinvoking(state);
            rc.shouldReinvoke = true;
          }
        }
        if (invocation.webhook.reinvocationPolicy === 'IfNeeded') state.previouslyInvoked.add(invocation.id);
      }
    } finally {
      state.lastOutput = canonicalJson(current);
    }
    return current;
  };
}

/**
 * ShouldCallHook (webhook/generic/webhook.go): the rules and selectors match the object as
 * it is now, then every matchCondition. A condition that cannot be evaluated refuses the
 * request with 403 under failurePolicy Fail (throws) and skips the webhook under Ignore.
 */
function shouldCallHook(webhook: V1MutatingWebhook, obj: StoredObject, attributes: AdmissionAttributes, namespaceLabels: Record<string, string>, opts: WebhookAdmissionOptions): boolean {
  const target = {
    operation: attributes.operation,
    group: attributes.group,
    version: attributes.version,
    resource: attributes.resource,
    subresource: '',
    namespaced: attributes.namespace !== undefined,
    namespaceLabels,
    objectLabels: obj.metadata.labels ?? {},
  };
  if (!webhookMatches(webhook, target)) return false;
  const conditions = webhook.matchConditions ?? [];
  if (conditions.length === 0) return true;
  const bindings = { object: obj, oldObject: null, request: admissionRequest(obj, attributes, opts, ''), namespaceObject: null };
  const result = evaluateMatchConditions(conditions, webhook.failurePolicy, bindings);
  if ('error' in result) {
    opts.log?.warn({ webhook: webhook.name, err: result.error }, 'failed evaluating match conditions, failing closed');
    // apierrors.NewForbidden(resource, attr.GetName(), err): no name for a pod that only has a generateName yet.
    throw admissionForbidden({ resource: attributes.resource, group: attributes.group, ...(obj.metadata.name ? { name: obj.metadata.name } : {}) }, result.error);
  }
  if (!result.matches) opts.log?.debug({ webhook: webhook.name, condition: 'failedCondition' in result ? result.failedCondition : undefined }, 'webhook skipped by its matchConditions');
  return result.matches;
}

/**
 * The AdmissionRequest of an AdmissionReview, without object and oldObject; also what
 * CEL sees as `request` (with an empty uid there, as the apiserver builds it for CEL).
 */
function admissionRequest(obj: StoredObject, attributes: AdmissionAttributes, opts: WebhookAdmissionOptions, uid: string): { uid: string; dryRun: boolean; options: object; [field: string]: unknown } {
  const gvk = { group: attributes.group, version: attributes.version, kind: obj.kind };
  const gvr = { group: attributes.group, version: attributes.version, resource: attributes.resource };
  return {
    uid,
    kind: gvk,
    resource: gvr,
    requestKind: gvk,
    requestResource: gvr,
    ...(obj.metadata.name ? { name: obj.metadata.name } : {}),
    ...(attributes.namespace !== undefined ? { namespace: attributes.namespace } : {}),
    operation: attributes.operation,
    userInfo: opts.userGroups ? { ...attributes.userInfo, groups: opts.userGroups } : attributes.userInfo,
    dryRun: attributes.dryRun,
    options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
  };
}

/** One webhook call with its failure policy; returns the (maybe patched) object or throws the apiserver's Status. */
async function invoke(webhook: V1MutatingWebhook, obj: StoredObject, attributes: AdmissionAttributes, opts: WebhookAdmissionOptions): Promise<StoredObject> {
  const failurePolicy = webhook.failurePolicy ?? 'Fail';
  let response: AdmissionResponse;
  try {
    response = await ask(webhook, obj, attributes, opts);
  } catch (err) {
    if (!(err instanceof WebhookCallError)) throw err;
    const message = `failed calling webhook "${webhook.name}": ${err.message}`;
    if (failurePolicy === 'Ignore') {
      opts.log?.warn({ webhook: webhook.name, err: err.message }, 'webhook call failed; failurePolicy Ignore: continuing without it');
      return obj;
    }
    throw internalError(message);
  }
  attributes.warnings.push(...(response.warnings ?? []));
  if (!response.allowed) throw denial(webhook.name, response.status);
  if (response.patch === undefined) return obj;
  return applyWebhookPatch(obj, response.patch);
}

async function ask(webhook: V1MutatingWebhook, obj: StoredObject, attributes: AdmissionAttributes, opts: WebhookAdmissionOptions): Promise<AdmissionResponse> {
  if (!webhook.admissionReviewVersions.includes('v1')) {
    throw new WebhookCallError(`webhook does not accept v1 AdmissionReview (admissionReviewVersions ${JSON.stringify(webhook.admissionReviewVersions)}); the emulator speaks only v1`);
  }
  if (attributes.dryRun && webhook.sideEffects !== 'None' && webhook.sideEffects !== 'NoneOnDryRun') {
    // Not a call failure: the apiserver refuses dry runs to webhooks that may have side effects, whatever the failurePolicy.
    throw new ApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'BadRequest', message: `admission webhook "${webhook.name}" does not support dry run`, code: 400 });
  }
  const timeoutSeconds = webhook.timeoutSeconds ?? 10;
  const endpoint = webhookEndpoint(webhook.clientConfig, opts.serviceResolver, timeoutSeconds);
  const { dryRun, options, ...rest } = admissionRequest(obj, attributes, opts, randomUUID());
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...rest, object: obj, oldObject: null, dryRun, options } };
  return callWebhook(endpoint, review, timeoutSeconds);
}

/** The apiserver's ToStatusErr: at least 400, always Failure, the message prefixed with who denied. */
function denial(name: string, status: AdmissionResponse['status']): ApiError {
  const deniedBy = `admission webhook "${name}" denied the request`;
  const code = status?.code !== undefined && status.code >= 400 ? status.code : 400;
  const message = status?.message ? `${deniedBy}: ${status.message}` : status?.reason ? `${deniedBy}: ${status.reason}` : `${deniedBy} without explanation`;
  return new ApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, ...(status?.reason ? { reason: status.reason } : {}), code });
}

/** A patch that does not decode or apply is an internal error whatever the failurePolicy (as in the apiserver). */
function applyWebhookPatch(obj: StoredObject, base64Patch: string): StoredObject {
  try {
    const operations = JSON.parse(Buffer.from(base64Patch, 'base64').toString('utf8')) as unknown;
    return applyPatch('application/json-patch+json', obj, operations) as StoredObject;
  } catch (err) {
    throw internalError(err instanceof ApiError ? (err.status.message ?? err.message) : (err as Error).message);
  }
}
