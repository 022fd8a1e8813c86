import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { CoreV1Event, KubeConfig, V1MutatingWebhookConfiguration, V1Namespace, V1Pod, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { createLogger } from '../../../cli/logger.js';
import { AdmissionChain, type AdmissionStep } from './admission.js';
import { webhookAdmissionStep, type WebhookAdmissionOptions } from './admissionChain.js';
import { FaultTable, type Fault } from './faults.js';
import { kubeConfigFor, writeKubeconfig } from './kubeconfig.js';
import { ObjectApi } from './objectApi.js';
import { findResourceType, namespaces, newNamespace, serviceAccounts, validatingAdmissionPolicies, validatingAdmissionPolicyBindings, type ResourceType } from './resources.js';
import { serviceAccountAdmissionStep, type ServiceAccountLike } from './serviceAccountAdmission.js';
import { ServiceAccountTokens, type UserInfo } from './serviceAccountTokens.js';
import { createApiServer, type RequestRecord } from './server.js';
import { ObjectStore } from './store.js';
import { asCoreEvent } from './eventShapes.js';
import { validatingAdmissionPolicies as policyPlugin } from './validatingAdmissionPolicy.js';

export type { Fault } from './faults.js';
export type { AdmissionStep, AdmissionAttributes } from './admission.js';
export type { RequestRecord } from './server.js';
export type { ServiceResolver, WebhookAdmissionOptions } from './admissionChain.js';
export type { FieldError } from './fieldError.js';
export { validatePod } from './podValidation.js';
export { ApiError } from './status.js';
export { SERVICE_ACCOUNT_MOUNT_PATH, SERVICE_ACCOUNT_VOLUME_PREFIX } from './serviceAccountAdmission.js';
export { API_AUDIENCE, CREDENTIAL_ID_EXTRA, POD_NAME_EXTRA, POD_UID_EXTRA, type UserInfo } from './serviceAccountTokens.js';

export interface ApiEmulatorOptions {
  /**
   * The administrator's bearer token (random when not given). Requests carry it, or a
   * service-account token the emulator issued (serviceAccountToken, the TokenRequest API);
   * any other is 401.
   */
  token?: string;
  /** The user the administrator's token stands for (groups `system:authenticated`), as named in Forbidden messages and `request.userInfo`. */
  userName?: string;
  /**
   * kube-apiserver's ServiceAccount admission plugin on pod CREATE, before any webhook
   * (serviceAccountAdmission.ts): pods get the `kube-api-access-*` token volume and must
   * name an existing ServiceAccount (`default` always exists). On by default, as in a
   * real cluster; false turns it off.
   */
  serviceAccountAdmission?: boolean;
}

function typeOf(group: string, resource: string): ResourceType {
  const type = findResourceType(group, 'v1', resource);
  if (!type) throw new Error(`the API emulator serves no resource ${resource} in group "${group}"`);
  return type;
}

/**
 * A Kubernetes API server emulated at the HTTP level on 127.0.0.1, for the real
 * @kubernetes/client-node to talk to: pods, events, secrets, namespaces, service accounts,
 * mutating webhook configurations and ValidatingAdmissionPolicies with their bindings,
 * with validation, patches, conflicts and faults.
 * Pod CREATE goes through the admission chain: the ServiceAccount plugin (unless turned
 * off), steps added with onPodCreate, and the webhook stage once useWebhookAdmission is called.
 * Every write of any resource then goes through the ValidatingAdmissionPolicy plugin
 * (validatingAdmissionPolicy.ts) with the requester's user info: the administrator's token,
 * or a service-account token bound to a pod (serviceAccountTokens.ts).
 */
export class ApiEmulator {
  readonly url: string;
  readonly token: string;
  private readonly requestLog: RequestRecord[];
  private readonly faults: FaultTable;
  private readonly store: ObjectStore;
  private readonly api: ObjectApi;
  private readonly podAdmission: AdmissionChain;
  private readonly tokens: ServiceAccountTokens;
  private readonly authenticate: (authorization: string | undefined) => UserInfo | undefined;
  private readonly server: Server;
  private readonly kubeconfigDirs: string[] = [];

  private constructor(parts: {
    url: string;
    token: string;
    requests: RequestRecord[];
    faults: FaultTable;
    store: ObjectStore;
    api: ObjectApi;
    podAdmission: AdmissionChain;
    tokens: ServiceAccountTokens;
    authenticate: (authorization: string | undefined) => UserInfo | undefined;
    server: Server;
  }) {
    this.url = parts.url;
    this.token = parts.token;
    this.requestLog = parts.requests;
    this.faults = parts.faults;
    this.store = parts.store;
    this.api = parts.api;
    this.podAdmission = parts.podAdmission;
    this.tokens = parts.tokens;
    this.authenticate = parts.authenticate;
    this.server = parts.server;
  }

  static async start(opts: ApiEmulatorOptions = {}): Promise<ApiEmulator> {
    const token = opts.token ?? crypto.randomUUID();
    const store = new ObjectStore();
    const podAdmission = new AdmissionChain();
    if (opts.serviceAccountAdmission !== false) {
      // First in the chain: in-tree plugins run before the webhooks.
      podAdmission.add(serviceAccountAdmissionStep((namespace, name) => store.get(serviceAccounts.storageKey, namespace, name) as ServiceAccountLike | undefined));
    }
    const policies = policyPlugin({
      policies: () => store.list(validatingAdmissionPolicies.storageKey),
      bindings: () => store.list(validatingAdmissionPolicyBindings.storageKey),
      namespace: (name) => store.get(namespaces.storageKey, undefined, name),
    });
    const api = new ObjectApi(store, (type) => (type.resource === 'pods' && type.group === '' ? podAdmission : undefined), policies);
    const tokens = new ServiceAccountTokens({
      // `default` exists in every namespace (the ServiceAccount controller is not emulated): stored on first use, for its uid.
      serviceAccount: (namespace, name) =>
        store.get(serviceAccounts.storageKey, namespace, name) ?? (name === 'default' ? api.put(serviceAccounts, { metadata: { name, namespace } }) : undefined),
      pod: (namespace, name) => store.get('pods', namespace, name),
    });
    const faults = new FaultTable();
    const requests: RequestRecord[] = [];
    const admin: UserInfo = { username: opts.userName ?? 'system:serviceaccount:default:default', groups: ['system:authenticated'] };
    const authenticate = (authorization: string | undefined): UserInfo | undefined => {
      if (authorization === `Bearer ${token}`) return structuredClone(admin);
      const bearer = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
      return bearer === undefined ? undefined : tokens.authenticate(bearer);
    };
    const server = createApiServer({ authenticate, tokens, api, faults, requests, log: createLogger('api-emulator') });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) api.put(namespaces, newNamespace(ns));
    return new ApiEmulator({ url: `http://127.0.0.1:${port}`, token, requests, faults, store, api, podAdmission, tokens, authenticate, server });
  }

  /** Every request served so far, in order: method, path, query, Content-Type, status code. */
  get requests(): ReadonlyArray<RequestRecord> {
    return this.requestLog;
  }

  /** A kubeconfig file for `token` (default: the administrator's), removed on close. */
  async kubeconfigFile(token: string = this.token, namespace = 'default'): Promise<string> {
    const path = await writeKubeconfig({ server: this.url, token, namespace });
    this.kubeconfigDirs.push(dirname(path));
    return path;
  }

  /** A client configuration for `token` (default: the administrator's). */
  kubeConfig(token: string = this.token, namespace = 'default'): KubeConfig {
    return kubeConfigFor({ server: this.url, token, namespace });
  }

  /**
   * A service-account token as the TokenRequest API issues it (without HTTP): for the
   * ServiceAccount `serviceAccountName` of `namespace`, bound to the pod `pod` when given
   * (then its user info carries the pod-name and pod-uid claims, and the token stops working
   * when the pod is deleted). Throws the apiserver's ApiError, e.g. when the pod runs under
   * another ServiceAccount.
   */
  serviceAccountToken(namespace: string, serviceAccountName: string, opts: { pod?: string; audiences?: string[]; expirationSeconds?: number } = {}): string {
    const spec = {
      ...(opts.audiences && { audiences: opts.audiences }),
      ...(opts.expirationSeconds !== undefined && { expirationSeconds: opts.expirationSeconds }),
      ...(opts.pod !== undefined && { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: opts.pod } }),
    };
    const issued = this.tokens.request(namespace, serviceAccountName, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec }) as { status: { token: string } };
    return issued.status.token;
  }

  /** The user a bearer token stands for, as the API authenticates it (undefined: the API answers 401). */
  userOf(token: string): UserInfo | undefined {
    return this.authenticate(`Bearer ${token}`);
  }

  addFault(fault: Fault): () => void {
    return this.faults.add(fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /**
   * Registers a mutating admission step for pod CREATE (the seam for the webhook caller),
   * after those already registered; like an in-tree plugin it runs again when a webhook
   * changed the pod (AdmissionChain). Returns a remover.
   */
  onPodCreate(step: AdmissionStep): () => void {
    return this.podAdmission.add(step);
  }

  /**
   * Turns on kube-apiserver's mutating webhook stage for pod CREATE: the webhooks of the
   * stored MutatingWebhookConfigurations are called over HTTPS (test/support/apiEmulator/admissionChain.ts).
   * Returns a remover.
   */
  useWebhookAdmission(opts: WebhookAdmissionOptions = {}): () => void {
    const pods = typeOf('', 'pods');
    return this.onPodCreate(webhookAdmissionStep(this, { log: createLogger('api-emulator-admission'), applyDefaults: (obj) => pods.applyDefaults?.(obj), ...opts }));
  }

  /** Creates or replaces a pod without HTTP (keeping its status); throws the 422 ApiError when invalid. */
  putPod(pod: V1Pod): V1Pod {
    const stored = this.api.put(typeOf('', 'pods'), plainJson(ObjectSerializer.serialize(pod, 'V1Pod')));
    return ObjectSerializer.deserialize(stored, 'V1Pod') as V1Pod;
  }

  getPod(namespace: string, name: string): V1Pod | undefined {
    return this.read<V1Pod>('pods', namespace, name, 'V1Pod');
  }

  listPods(namespace?: string): V1Pod[] {
    return this.store.list('pods', namespace).map((p) => ObjectSerializer.deserialize(p, 'V1Pod') as V1Pod);
  }

  /** Namespaces with labels, for namespaceSelector matching. */
  putNamespace(namespace: V1Namespace): V1Namespace {
    const stored = this.api.put(namespaces, plainJson(ObjectSerializer.serialize(namespace, 'V1Namespace')));
    return ObjectSerializer.deserialize(stored, 'V1Namespace') as V1Namespace;
  }

  /** Creates or replaces a ServiceAccount without HTTP (namespace `default` when not given). */
  putServiceAccount(serviceAccount: V1ServiceAccount): V1ServiceAccount {
    const stored = this.api.put(serviceAccounts, plainJson(ObjectSerializer.serialize(serviceAccount, 'V1ServiceAccount')));
    return ObjectSerializer.deserialize(stored, 'V1ServiceAccount') as V1ServiceAccount;
  }

  getServiceAccount(namespace: string, name: string): V1ServiceAccount | undefined {
    return this.read<V1ServiceAccount>('serviceaccounts', namespace, name, 'V1ServiceAccount');
  }

  getSecret(namespace: string, name: string): V1Secret | undefined {
    return this.read<V1Secret>('secrets', namespace, name, 'V1Secret');
  }

  /** What the admission chain of issue 6 dispatches on. */
  mutatingWebhookConfigurations(): V1MutatingWebhookConfiguration[] {
    return this.store.list('mutatingwebhookconfigurations').map((m) => ObjectSerializer.deserialize(m, 'V1MutatingWebhookConfiguration') as V1MutatingWebhookConfiguration);
  }

  getNamespace(name: string): V1Namespace | undefined {
    return this.read<V1Namespace>('namespaces', undefined, name, 'V1Namespace');
  }

  /** Events written through either events API, in the core/v1 shape. */
  events(namespace?: string): CoreV1Event[] {
    return this.store.list('events', namespace).map((e) => ObjectSerializer.deserialize(asCoreEvent(e), 'CoreV1Event') as CoreV1Event);
  }

  /** A stored object as the client-node model `model` (dates as Date, as a client would see it). */
  private read<T>(storageKey: string, namespace: string | undefined, name: string, model: string): T | undefined {
    const stored = this.store.get(storageKey, namespace, name);
    return stored && (ObjectSerializer.deserialize(stored, model) as T);
  }

  async close(): Promise<void> {
    this.faults.clear();
    const closed = once(this.server, 'close');
    this.server.close();
    this.server.closeAllConnections();
    await closed;
    await Promise.all(this.kubeconfigDirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** The serializer leaves unset fields as `undefined` keys; the wire (and the validation) never sees those. */
function plainJson(serialized: unknown): object {
  return JSON.parse(JSON.stringify(serialized)) as object;
}
