import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { CoreV1Event, KubeConfig, V1MutatingWebhookConfiguration, V1Namespace, V1Pod, V1Secret } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { createLogger } from '../../../cli/logger.js';
import { AdmissionChain, type AdmissionStep } from './admission.js';
import { webhookAdmissionStep, type WebhookAdmissionOptions } from './admissionChain.js';
import { FaultTable, type Fault } from './faults.js';
import { kubeConfigFor, writeKubeconfig } from './kubeconfig.js';
import { ObjectApi } from './objectApi.js';
import { findResourceType, namespaces, newNamespace, type ResourceType } from './resources.js';
import { createApiServer, type RequestRecord } from './server.js';
import { ObjectStore } from './store.js';
import { asCoreEvent } from './eventShapes.js';

export type { Fault } from './faults.js';
export type { AdmissionStep, AdmissionAttributes } from './admission.js';
export type { RequestRecord } from './server.js';
export type { ServiceResolver, WebhookAdmissionOptions } from './admissionChain.js';
export type { FieldError } from './fieldError.js';
export { validatePod } from './podValidation.js';
export { ApiError } from './status.js';

export interface ApiEmulatorOptions {
  /** Bearer token every request must carry; random when not given. */
  token?: string;
  /** The user the token stands for, as named in Forbidden messages. */
  userName?: string;
}

function typeOf(group: string, resource: string): ResourceType {
  const type = findResourceType(group, 'v1', resource);
  if (!type) throw new Error(`the API emulator serves no resource ${resource} in group "${group}"`);
  return type;
}

/**
 * A Kubernetes API server emulated at the HTTP level on 127.0.0.1, for the real
 * @kubernetes/client-node to talk to: pods, events, secrets, namespaces and
 * mutating webhook configurations, with validation, patches, conflicts and faults.
 */
export class ApiEmulator {
  readonly url: string;
  readonly token: string;
  private readonly requestLog: RequestRecord[];
  private readonly faults: FaultTable;
  private readonly store: ObjectStore;
  private readonly api: ObjectApi;
  private readonly podAdmission: AdmissionChain;
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
    server: Server;
  }) {
    this.url = parts.url;
    this.token = parts.token;
    this.requestLog = parts.requests;
    this.faults = parts.faults;
    this.store = parts.store;
    this.api = parts.api;
    this.podAdmission = parts.podAdmission;
    this.server = parts.server;
  }

  static async start(opts: ApiEmulatorOptions = {}): Promise<ApiEmulator> {
    const token = opts.token ?? crypto.randomUUID();
    const store = new ObjectStore();
    const podAdmission = new AdmissionChain();
    const api = new ObjectApi(store, (type) => (type.resource === 'pods' && type.group === '' ? podAdmission : undefined));
    const faults = new FaultTable();
    const requests: RequestRecord[] = [];
    const userName = opts.userName ?? 'system:serviceaccount:default:default';
    const server = createApiServer({ token, userName, api, faults, requests, log: createLogger('api-emulator') });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) api.put(namespaces, newNamespace(ns));
    return new ApiEmulator({ url: `http://127.0.0.1:${port}`, token, requests, faults, store, api, podAdmission, server });
  }

  /** Every request served so far, in order: method, path, query, Content-Type, status code. */
  get requests(): ReadonlyArray<RequestRecord> {
    return this.requestLog;
  }

  async kubeconfigFile(): Promise<string> {
    const path = await writeKubeconfig({ server: this.url, token: this.token, namespace: 'default' });
    this.kubeconfigDirs.push(dirname(path));
    return path;
  }

  kubeConfig(): KubeConfig {
    return kubeConfigFor({ server: this.url, token: this.token, namespace: 'default' });
  }

  addFault(fault: Fault): () => void {
    return this.faults.add(fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Registers a mutating admission step for pod CREATE (the seam for the webhook caller); returns a remover. */
  onPodCreate(step: AdmissionStep): () => void {
    return this.podAdmission.add(step);
  }

  /**
   * Turns on kube-apiserver's mutating webhook stage for pod CREATE: the webhooks of the
   * stored MutatingWebhookConfigurations are called over HTTPS (test/support/apiEmulator/admissionChain.ts).
   * Returns a remover.
   */
  useWebhookAdmission(opts: WebhookAdmissionOptions = {}): () => void {
    return this.onPodCreate(webhookAdmissionStep(this, { log: createLogger('api-emulator-admission'), ...opts }));
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
