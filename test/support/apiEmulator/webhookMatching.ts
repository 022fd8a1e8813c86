import type { V1LabelSelector, V1MutatingWebhook, V1RuleWithOperations } from '@kubernetes/client-node';
import { matchesLabels, type Labels, type Requirement } from './labelSelector.js';

/** What a webhook's or a policy's rules and selectors are matched against. */
export interface AdmissionRequestTarget {
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  group: string;
  version: string;
  resource: string;
  /** '' for the object itself, else the subresource (`status`). */
  subresource: string;
  namespaced: boolean;
  namespaceLabels: Labels;
  objectLabels: Labels;
}

/**
 * Whether kube-apiserver would call this webhook for the request
 * (k8s.io/apiserver/pkg/admission/plugin/webhook/predicates): any rule matches, and
 * the namespaceSelector and objectSelector both match. An absent selector matches
 * everything, as does an empty one.
 *
 * matchPolicy: with `Equivalent` (the default) the apiserver would also match a rule
 * naming another group/version of the same resource; core/v1 pods have no such
 * equivalent, so Exact and Equivalent decide alike for what the emulator serves.
 */
export function webhookMatches(webhook: V1MutatingWebhook, target: AdmissionRequestTarget): boolean {
  const rules = webhook.rules ?? [];
  if (!rules.some((rule) => ruleMatches(rule, target))) return false;
  // Cluster-scoped objects (other than namespaces) are never filtered by the namespaceSelector.
  if (target.namespaced && !selectorMatches(webhook.namespaceSelector, target.namespaceLabels)) return false;
  return selectorMatches(webhook.objectSelector, target.objectLabels);
}

function includesOrStar(values: readonly string[] | undefined, value: string): boolean {
  return (values ?? []).some((v) => v === '*' || v === value);
}

export function ruleMatches(rule: V1RuleWithOperations, target: AdmissionRequestTarget): boolean {
  if (!includesOrStar(rule.operations, target.operation)) return false;
  if (!includesOrStar(rule.apiGroups, target.group)) return false;
  if (!includesOrStar(rule.apiVersions, target.version)) return false;
  if (!resourceMatches(rule.resources ?? [], target.resource, target.subresource)) return false;
  const scope = rule.scope ?? '*';
  return scope === '*' || (scope === 'Namespaced') === target.namespaced;
}

/** `pods` (the object only), `pods/status`, `pods/*` (subresources only), `*` (objects only), `*\/*` (all). */
function resourceMatches(resources: readonly string[], resource: string, subresource: string): boolean {
  const wanted = subresource === '' ? resource : `${resource}/${subresource}`;
  return resources.some((entry) => {
    if (entry === '*/*' || entry === wanted) return true;
    const [res, sub] = entry.split('/');
    if (sub === undefined) return entry === '*' && subresource === '';
    return (res === '*' || res === resource) && (sub === '*' ? subresource !== '' : sub === subresource);
  });
}

/** A metav1.LabelSelector as requirements: matchLabels are equalities, matchExpressions map one to one. */
export function selectorRequirements(selector: V1LabelSelector): Requirement[] {
  const requirements: Requirement[] = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => ({ key, op: 'eq', value }));
  for (const e of selector.matchExpressions ?? []) {
    switch (e.operator) {
      case 'In':
        requirements.push({ key: e.key, op: 'in', values: e.values ?? [] });
        break;
      case 'NotIn':
        requirements.push({ key: e.key, op: 'notin', values: e.values ?? [] });
        break;
      case 'Exists':
        requirements.push({ key: e.key, op: 'exists' });
        break;
      case 'DoesNotExist':
        requirements.push({ key: e.key, op: 'notexists' });
        break;
      default:
        throw new Error(`label selector operator ${JSON.stringify(e.operator)} is not valid; expected In, NotIn, Exists or DoesNotExist`);
    }
  }
  return requirements;
}

/** An absent selector matches everything, as does an empty one. */
export function selectorMatches(selector: V1LabelSelector | undefined, labels: Labels): boolean {
  return selector === undefined || matchesLabels(selectorRequirements(selector), labels);
}
