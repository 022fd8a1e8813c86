import { randomUUID } from 'node:crypto';
import type { AdmissionChain } from './admission.js';
import { canonicalJson } from './canonicalJson.js';
import { matchesLabels, parseFieldSelector, parseLabelSelector } from './labelSelector.js';
import { randomNameSuffix } from './nameSyntax.js';
import { applyPatch } from './patch.js';
import { apiVersionOf, namespaces, newNamespace, type ResourceType, type StoredObject } from './resources.js';
import { alreadyExists, badRequest, conflict, deleted, invalid, notFound, preconditionFailed, type Status, type Target } from './status.js';
import type { ObjectStore } from './store.js';
import type { UserInfo } from './serviceAccountTokens.js';
import type { ValidatingAdmission, ValidationRequest } from './validatingAdmissionPolicy.js';

/** One request against one resource, as the router resolved it. */
export interface RequestScope {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: 'status';
  /** Who sent the request, as the authenticator found them. */
  userInfo: UserInfo;
  dryRun: boolean;
  /** Warnings collected while serving the request (admission webhooks add them). */
  warnings?: string[];
}

/** The DeleteOptions the emulator honours: preconditions on the stored object. */
export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface ListQuery {
  labelSelector?: string;
  fieldSelector?: string;
}

/**
 * The verbs of the Kubernetes API over the store, with the apiserver's semantics:
 * server-set metadata, mutating admission then validation on create, resourceVersion
 * preconditions, immutable pod specs, the status subresource, no-op writes that do
 * not advance the resourceVersion, and validating admission (ValidatingAdmissionPolicy)
 * after the object's own validation on every create, update, patch and delete.
 * Errors are thrown as ApiError Statuses.
 */
export class ObjectApi {
  constructor(
    private readonly store: ObjectStore,
    private readonly admissionFor: (type: ResourceType) => AdmissionChain | undefined,
    private readonly validatingAdmission: ValidatingAdmission = () => undefined,
  ) {}

  get(scope: RequestScope): StoredObject {
    return this.present(scope.type, this.mustGet(scope));
  }

  list(scope: RequestScope, query: ListQuery): object {
    const labels = parseLabelSelector(query.labelSelector ?? '');
    const fields = parseFieldSelector(query.fieldSelector ?? '');
    const items = this.store
      .list(scope.type.storageKey, scope.namespace)
      .filter((o) => matchesLabels(labels, o.metadata.labels))
      .filter((o) =>
        fields.every((f) => {
          const equal = (f.field === 'metadata.name' ? o.metadata.name : o.metadata.namespace) === f.value;
          return f.op === 'eq' ? equal : !equal;
        }),
      )
      .map((o) => {
        // List items carry no kind/apiVersion of their own, as in real list responses.
        const { kind: _kind, apiVersion: _apiVersion, ...item } = this.present(scope.type, o);
        return item;
      });
    return { apiVersion: apiVersionOf(scope.type), kind: `${scope.type.kind}List`, metadata: { resourceVersion: this.store.resourceVersion }, items };
  }

  async create(scope: RequestScope, body: unknown): Promise<StoredObject> {
    const { type } = scope;
    let obj = this.checkBody(scope, body);
    if (type.namespaced) obj.metadata.namespace = scope.namespace;
    type.applyDefaults?.(obj);
    const chain = this.admissionFor(type);
    if (chain) {
      obj = await chain.admit(obj, {
        operation: 'CREATE',
        resource: type.resource,
        group: type.group,
        version: type.version,
        namespace: scope.namespace,
        userName: scope.userInfo.username,
        userInfo: scope.userInfo,
        dryRun: scope.dryRun,
        warnings: scope.warnings ?? [],
      });
    }
    type.applyDefaults?.(obj);
    const meta = obj.metadata;
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomNameSuffix();
    meta.uid = randomUUID();
    meta.creationTimestamp = kubeTimestamp();
    meta.resourceVersion = '';
    if (type.hasStatusSubresource) obj.status = { phase: 'Pending' };
    type.normalize?.(obj);
    const causes = type.validate(obj);
    if (causes.length > 0) throw invalid(type.kind, targetOf(type, meta.name), causes);
    this.validatingAdmission(this.validationRequest(scope, 'CREATE', 'CreateOptions', meta.name, this.present(type, obj), null));
    if (this.store.get(type.storageKey, meta.namespace, meta.name)) throw alreadyExists(targetOf(type, meta.name));
    if (scope.dryRun) return this.present(type, obj);
    this.ensureNamespace(meta.namespace);
    meta.resourceVersion = this.store.nextResourceVersion();
    return this.present(type, this.store.put(type.storageKey, obj));
  }

  update(scope: RequestScope, body: unknown): StoredObject {
    const obj = this.checkBody(scope, body);
    if (obj.metadata.name && obj.metadata.name !== scope.name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${scope.name ?? ''})`);
    }
    return this.write(scope, this.mustGet(scope), obj, 'UpdateOptions');
  }

  patch(scope: RequestScope, contentType: string, patch: unknown): StoredObject {
    const stored = this.mustGet(scope);
    const patched = applyPatch(contentType, this.present(scope.type, stored), patch) as StoredObject;
    if (typeof patched !== 'object' || patched === null || Array.isArray(patched)) throw badRequest('the patch did not result in an object');
    patched.metadata ??= { ...stored.metadata };
    if (patched.metadata.name !== stored.metadata.name) throw badRequest(`the name of the object (${String(patched.metadata.name)}) does not match the name on the URL (${stored.metadata.name})`);
    return this.write(scope, stored, patched, 'PatchOptions');
  }

  delete(scope: RequestScope, options: DeleteOptions = {}): StoredObject | Status {
    const stored = this.mustGet(scope);
    // Checked before admission, as the registry checks them in its delete (store.Delete → Preconditions.Check).
    const { uid, resourceVersion } = options.preconditions ?? {};
    if (uid !== undefined && uid !== stored.metadata.uid) {
      throw preconditionFailed(targetOf(scope.type, stored.metadata.name), `UID in precondition: ${uid}, UID in object meta: ${stored.metadata.uid}`);
    }
    if (resourceVersion !== undefined && resourceVersion !== stored.metadata.resourceVersion) {
      throw preconditionFailed(
        targetOf(scope.type, stored.metadata.name),
        `ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${stored.metadata.resourceVersion}`,
      );
    }
    this.validatingAdmission(this.validationRequest(scope, 'DELETE', 'DeleteOptions', stored.metadata.name, null, this.present(scope.type, stored)));
    if (scope.dryRun) return this.present(scope.type, stored);
    this.store.delete(scope.type.storageKey, stored.metadata.namespace, stored.metadata.name);
    stored.metadata.resourceVersion = this.store.nextResourceVersion();
    if (scope.type.hasStatusSubresource) {
      stored.metadata.deletionTimestamp = kubeTimestamp();
      return this.present(scope.type, stored);
    }
    return deleted(targetOf(scope.type, stored.metadata.name), stored.metadata.uid);
  }

  /** Create-or-replace without HTTP, admission or preconditions, for test set-up; still validates. */
  put(type: ResourceType, body: object): StoredObject {
    const obj = structuredClone(body) as StoredObject;
    if (typeof obj.metadata?.name !== 'string') throw new Error(`a ${type.kind} put into the API emulator needs metadata.name`);
    obj.apiVersion = apiVersionOf(type);
    obj.kind = type.kind;
    const meta = obj.metadata;
    if (type.namespaced) meta.namespace ??= 'default';
    const stored = this.store.get(type.storageKey, meta.namespace, meta.name);
    meta.uid = stored?.metadata.uid ?? meta.uid ?? randomUUID();
    meta.creationTimestamp = stored?.metadata.creationTimestamp ?? meta.creationTimestamp ?? kubeTimestamp();
    type.applyDefaults?.(obj);
    type.normalize?.(obj);
    const causes = type.validate(obj);
    if (causes.length > 0) throw invalid(type.kind, targetOf(type, meta.name), causes);
    this.ensureNamespace(meta.namespace);
    meta.resourceVersion = this.store.nextResourceVersion();
    return this.store.put(type.storageKey, obj);
  }

  /** Shared by PUT and PATCH once the new object is known. */
  private write(scope: RequestScope, stored: StoredObject, next: StoredObject, optionsKind: 'UpdateOptions' | 'PatchOptions'): StoredObject {
    const { type } = scope;
    const target = targetOf(type, stored.metadata.name);
    if (next.metadata.resourceVersion !== undefined && next.metadata.resourceVersion !== stored.metadata.resourceVersion) throw conflict(target);
    let obj: StoredObject;
    if (scope.subresource === 'status') {
      obj = { ...stored, status: next.status };
    } else {
      obj = { ...next, apiVersion: stored.apiVersion, kind: stored.kind };
      if (type.hasStatusSubresource) obj.status = stored.status;
    }
    // Fields only the server sets survive any write.
    const { uid, creationTimestamp, namespace, name } = stored.metadata;
    obj.metadata = { ...obj.metadata, uid, creationTimestamp, name, resourceVersion: stored.metadata.resourceVersion };
    if (namespace !== undefined) obj.metadata.namespace = namespace;
    type.applyDefaults?.(obj);
    type.normalize?.(obj);
    const causes = (type.validateUpdate ?? type.validate)(obj, stored);
    if (causes.length > 0) throw invalid(type.kind, target, causes);
    // Validating admission sees no-op writes too (the apiserver admits before it compares).
    this.validatingAdmission(this.validationRequest(scope, 'UPDATE', optionsKind, stored.metadata.name, this.present(type, obj), this.present(type, stored)));
    if (canonicalJson(obj) === canonicalJson(stored) || scope.dryRun) return this.present(type, obj);
    obj.metadata.resourceVersion = this.store.nextResourceVersion();
    return this.present(type, this.store.put(type.storageKey, obj));
  }

  private validationRequest(
    scope: RequestScope,
    operation: ValidationRequest['operation'],
    optionsKind: ValidationRequest['optionsKind'],
    name: string,
    object: StoredObject | null,
    oldObject: StoredObject | null,
  ): ValidationRequest {
    return {
      operation,
      type: scope.type,
      subresource: scope.subresource ?? '',
      namespace: scope.type.namespaced ? (object ?? oldObject)?.metadata.namespace : undefined,
      name,
      object: object && structuredClone(object),
      oldObject: oldObject && structuredClone(oldObject),
      userInfo: scope.userInfo,
      dryRun: scope.dryRun,
      optionsKind,
      warnings: scope.warnings ?? [],
    };
  }

  private mustGet(scope: RequestScope): StoredObject {
    const found = this.store.get(scope.type.storageKey, scope.namespace, scope.name ?? '');
    if (!found) throw notFound(targetOf(scope.type, scope.name));
    return found;
  }

  private checkBody(scope: RequestScope, body: unknown): StoredObject {
    const { type } = scope;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest(`the body must be a ${type.kind} object`);
    const obj = structuredClone(body) as Partial<StoredObject>;
    const expectedVersion = apiVersionOf(type);
    if (obj.kind !== undefined && obj.kind !== type.kind) throw badRequest(`the kind in the body (${String(obj.kind)}) does not match the resource ${type.resource} (kind ${type.kind})`);
    if (obj.apiVersion !== undefined && obj.apiVersion !== expectedVersion) {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${expectedVersion})`);
    }
    if (typeof obj.metadata !== 'object' || obj.metadata === null) obj.metadata = {} as StoredObject['metadata'];
    if (type.namespaced && obj.metadata.namespace !== undefined && obj.metadata.namespace !== scope.namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    return { ...obj, apiVersion: expectedVersion, kind: type.kind } as StoredObject;
  }

  private present(type: ResourceType, obj: StoredObject): StoredObject {
    return type.present ? type.present(obj) : obj;
  }

  /** Namespaces spring into being on first use, so tests need not create them first. */
  private ensureNamespace(namespace: string | undefined): void {
    if (namespace === undefined || this.store.get(namespaces.storageKey, undefined, namespace)) return;
    this.put(namespaces, newNamespace(namespace));
  }
}

function targetOf(type: ResourceType, name: string | undefined): Target {
  const t: Target = { resource: type.resource, group: type.group };
  if (name !== undefined) t.name = name;
  return t;
}

/** RFC 3339 in seconds, as metav1.Time serialises. */
function kubeTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
