import { validate as validateSecretSchema } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Secret';
import { validate as validateCoreEventSchema } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Event';
import { validate as validateEventsV1Schema } from 'kubernetes-models/_schemas/IoK8sApiEventsV1Event';
import { validate as validateNamespaceSchema } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Namespace';
import { validate as validateMwcSchema } from 'kubernetes-models/_schemas/IoK8sApiAdmissionregistrationV1MutatingWebhookConfiguration';
import { validate as validateServiceAccountSchema } from 'kubernetes-models/_schemas/IoK8sApiCoreV1ServiceAccount';
import { validate as validateVapSchema } from 'kubernetes-models/_schemas/IoK8sApiAdmissionregistrationV1ValidatingAdmissionPolicy';
import { validate as validateVapBindingSchema } from 'kubernetes-models/_schemas/IoK8sApiAdmissionregistrationV1ValidatingAdmissionPolicyBinding';
import type { V1MatchCondition } from '@kubernetes/client-node';
import type { IPod } from 'kubernetes-models/v1/Pod';
import { validate as validatePodSchema } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Pod';
import { applyPodDefaults } from './podDefaults.js';
import { invalid, type FieldError } from './fieldError.js';
import { isDns1123Label } from './nameSyntax.js';
import { validateMatchConditions } from './matchConditions.js';
import { validateObjectMeta } from './objectMetaValidation.js';
import { validatePod, validatePodUpdate } from './podValidation.js';
import { schemaCauses, type SchemaValidator } from './schemaValidation.js';
import { asCoreEvent, asEventsV1Event } from './eventShapes.js';
import { applyBindingDefaults, applyPolicyDefaults, validateBindingSpec, validatePolicySpec } from './validatingAdmissionPolicy.js';

export interface StoredMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

/** An object as the emulator keeps it: any kind, with the metadata the apiserver assigns. */
export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: StoredMeta;
  [field: string]: unknown;
}

/** Everything the emulator needs to know about one served resource. */
export interface ResourceType {
  /** The plural in the URL and in RBAC (`pods`). */
  resource: string;
  /** API group, '' for core. */
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
  /** Resources served by two APIs (events) share one store under this key. */
  storageKey: string;
  /** The causes of a 422 for an object about to be created. */
  validate(obj: object): FieldError[];
  /** The causes of a 422 for an update of `stored`; defaults to `validate`. */
  validateUpdate?(obj: object, stored: StoredObject): FieldError[];
  /** Fills the fields the apiserver defaults on every decode (pods). */
  applyDefaults?(obj: StoredObject): void;
  /** Rewrites an object about to be stored (secrets: `stringData` into `data`). */
  normalize?(obj: StoredObject): void;
  /** The object as this API shows it, when the store is shared with another API. */
  present?(obj: StoredObject): StoredObject;
  /** Pods: DELETE answers with the object, and `status` is a subresource. */
  hasStatusSubresource: boolean;
}

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

function schemaAndMeta(validator: SchemaValidator): (obj: object) => FieldError[] {
  return (obj) => {
    const causes = schemaCauses(validator, obj);
    if (causes.length > 0) return causes;
    return validateObjectMeta((obj as { metadata?: StoredMeta }).metadata);
  };
}

const pods: ResourceType = {
  resource: 'pods',
  group: '',
  version: 'v1',
  kind: 'Pod',
  namespaced: true,
  storageKey: 'pods',
  validate: validatePod,
  validateUpdate: (obj, stored) => validatePodUpdate(obj, stored as unknown as IPod),
  applyDefaults(obj) {
    // Defaulting reads the pod through its schema types; a malformed pod is left for validation to report.
    if (validatePodSchema(obj)) applyPodDefaults(obj as unknown as IPod);
  },
  hasStatusSubresource: true,
};

const secrets: ResourceType = {
  resource: 'secrets',
  group: '',
  version: 'v1',
  kind: 'Secret',
  namespaced: true,
  storageKey: 'secrets',
  validate: schemaAndMeta(validateSecretSchema),
  normalize(secret) {
    // The apiserver folds the write-only stringData into data and never returns it.
    const stringData = secret.stringData as Record<string, string> | undefined;
    if (stringData) {
      const data = { ...((secret.data as Record<string, string> | undefined) ?? {}) };
      for (const [key, value] of Object.entries(stringData)) data[key] = Buffer.from(value).toString('base64');
      secret.data = data;
      delete secret.stringData;
    }
    secret.type ??= 'Opaque';
  },
  hasStatusSubresource: false,
};

const coreEvents: ResourceType = {
  resource: 'events',
  group: '',
  version: 'v1',
  kind: 'Event',
  namespaced: true,
  storageKey: 'events',
  validate: schemaAndMeta(validateCoreEventSchema),
  present: (e) => asCoreEvent(e) as StoredObject,
  hasStatusSubresource: false,
};

const eventsV1: ResourceType = {
  ...coreEvents,
  group: 'events.k8s.io',
  validate: schemaAndMeta(validateEventsV1Schema),
  present: (e) => asEventsV1Event(e) as StoredObject,
};

export const namespaces: ResourceType = {
  resource: 'namespaces',
  group: '',
  version: 'v1',
  kind: 'Namespace',
  namespaced: false,
  storageKey: 'namespaces',
  validate(obj) {
    const causes = schemaAndMeta(validateNamespaceSchema)(obj);
    const name = (obj as { metadata?: StoredMeta }).metadata?.name ?? '';
    for (const msg of isDns1123Label(name)) causes.push(invalid('metadata.name', name, msg));
    return causes;
  },
  hasStatusSubresource: false,
};

/** A namespace as the apiserver makes one, with its automatic name label. */
export function newNamespace(name: string): object {
  return { metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

const mutatingWebhookConfigurations: ResourceType = {
  resource: 'mutatingwebhookconfigurations',
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'MutatingWebhookConfiguration',
  namespaced: false,
  storageKey: 'mutatingwebhookconfigurations',
  validate(obj) {
    const causes = schemaAndMeta(validateMwcSchema)(obj);
    if (causes.length > 0) return causes;
    // The CEL matchConditions compile when the configuration is written, as in the apiserver.
    const webhooks = (obj as { webhooks?: Array<{ matchConditions?: V1MatchCondition[] }> }).webhooks ?? [];
    return webhooks.flatMap((webhook, i) => validateMatchConditions(webhook.matchConditions, `webhooks[${i}].matchConditions`));
  },
  hasStatusSubresource: false,
};

/** Read by the ServiceAccount admission plugin on pod CREATE (serviceAccountAdmission.ts). */
export const serviceAccounts: ResourceType = {
  resource: 'serviceaccounts',
  group: '',
  version: 'v1',
  kind: 'ServiceAccount',
  namespaced: true,
  storageKey: 'serviceaccounts',
  validate: schemaAndMeta(validateServiceAccountSchema),
  hasStatusSubresource: false,
};

/** The schema, then the apiserver's checks of the spec (CEL compiled as it is written). */
function schemaAndSpec(validator: SchemaValidator, validateSpec: (obj: object) => FieldError[]): (obj: object) => FieldError[] {
  return (obj) => {
    const causes = schemaAndMeta(validator)(obj);
    return causes.length > 0 ? causes : validateSpec(obj);
  };
}

/** Evaluated on every write by the ValidatingAdmissionPolicy plugin (validatingAdmissionPolicy.ts). */
export const validatingAdmissionPolicies: ResourceType = {
  resource: 'validatingadmissionpolicies',
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'ValidatingAdmissionPolicy',
  namespaced: false,
  storageKey: 'validatingadmissionpolicies',
  validate: schemaAndSpec(validateVapSchema, validatePolicySpec),
  applyDefaults: applyPolicyDefaults,
  hasStatusSubresource: false,
};

export const validatingAdmissionPolicyBindings: ResourceType = {
  resource: 'validatingadmissionpolicybindings',
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'ValidatingAdmissionPolicyBinding',
  namespaced: false,
  storageKey: 'validatingadmissionpolicybindings',
  validate: schemaAndSpec(validateVapBindingSchema, validateBindingSpec),
  applyDefaults: applyBindingDefaults,
  hasStatusSubresource: false,
};

export const resourceTypes: readonly ResourceType[] = [
  pods,
  secrets,
  coreEvents,
  eventsV1,
  namespaces,
  mutatingWebhookConfigurations,
  serviceAccounts,
  validatingAdmissionPolicies,
  validatingAdmissionPolicyBindings,
];

export function findResourceType(group: string, version: string, resource: string): ResourceType | undefined {
  return resourceTypes.find((t) => t.group === group && t.version === version && t.resource === resource);
}
