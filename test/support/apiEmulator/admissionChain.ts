import { randomUUID } from 'node:crypto';
import type { V1MutatingWebhook, V1MutatingWebhookConfiguration, V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AdmissionAttributes, AdmissionStep } from './admission.js';
import { canonicalJson } from './canonicalJson.js';
import { applyPatch } from './patch.js';
import type { StoredObject } from './resources.js';
import { ApiError, internalError } from './status.js';
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
  /** The user named in `request.userInfo`. */
  userGroups?: string[];
  log?: Logger;
}

interface Invocation {
  id: string;
  webhook: V1MutatingWebhook;
}

/**
 * The mutating webhook stage of kube-apiserver for pod CREATE, as an admission step of
 * the emulator (k8s.io/apiserver/pkg/admission/plugin/webhook/mutating/dispatcher.go):
 * configurations in name order, webhooks in their listed order; each matching webhook
 * gets an AdmissionReview v1 over HTTPS trusting only its caBundle; a denial becomes
 * the webhook's status, a failed call a 500 (failurePolicy Fail) or nothing (Ignore);
 * JSON patches are applied in turn; warnings go to the response headers. When a
 * webhook changed the object, the webhooks with reinvocationPolicy IfNeeded that ran
 * before that change are called once more, in order.
 */
export function webhookAdmissionStep(registry: WebhookRegistry, opts: WebhookAdmissionOptions = {}): AdmissionStep {
  return async (obj, attributes) => {
    const invocations = registry
      .mutatingWebhookConfigurations()
      .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
      .flatMap((config) => (config.webhooks ?? []).map((webhook, i): Invocation => ({ id: `${config.metadata?.name ?? ''}/${i}/${webhook.name}`, webhook })));
    const namespace = attributes.namespace;
    const namespaceLabels = namespace === undefined ? {} : (registry.getNamespace(namespace)?.metadata?.labels ?? { 'kubernetes.io/metadata.name': namespace });
    const matching = invocations.filter(({ webhook }) =>
      webhookMatches(webhook, {
        operation: attributes.operation,
        group: attributes.group,
        version: attributes.version,
        resource: attributes.resource,
        subresource: '',
        namespaced: namespace !== undefined,
        namespaceLabels,
        objectLabels: obj.metadata.labels ?? {},
      }),
    );

    let current = obj;
    const previouslyInvoked = new Set<string>();
    let toReinvoke = new Set<string>();
    let anyChange = false;
    const pass = async (reinvocation: boolean): Promise<void> => {
      for (const invocation of matching) {
        if (reinvocation && !toReinvoke.has(invocation.id)) continue;
        const next = await invoke(invocation.webhook, current, attributes, opts);
        if (canonicalJson(next) !== canonicalJson(current)) {
          current = next;
          anyChange = true;
          // Everyone reinvocable who saw the object before this change may need to see it again.
          toReinvoke = new Set([...toReinvoke, ...previouslyInvoked]);
        }
        if (invocation.webhook.reinvocationPolicy === 'IfNeeded') previouslyInvoked.add(invocation.id);
      }
    };
    await pass(false);
    if (anyChange && toReinvoke.size > 0) {
      opts.log?.debug({ webhooks: [...toReinvoke] }, 'reinvoking webhooks after a later webhook changed the object');
      previouslyInvoked.clear();
      await pass(true);
    }
    return current;
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
  const uid = randomUUID();
  const gvk = { group: attributes.group, version: attributes.version, kind: obj.kind };
  const gvr = { group: attributes.group, version: attributes.version, resource: attributes.resource };
  const request = {
    uid,
    kind: gvk,
    resource: gvr,
    requestKind: gvk,
    requestResource: gvr,
    ...(obj.metadata.name ? { name: obj.metadata.name } : {}),
    ...(attributes.namespace !== undefined ? { namespace: attributes.namespace } : {}),
    operation: attributes.operation,
    userInfo: { username: attributes.userName, groups: opts.userGroups ?? ['system:authenticated'] },
    object: obj,
    oldObject: null,
    dryRun: attributes.dryRun,
    options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
  };
  return callWebhook(endpoint, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request } as { request: { uid: string } }, timeoutSeconds);
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
