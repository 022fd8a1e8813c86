import { readFile } from 'node:fs/promises';
import type * as Http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type * as Https from 'node:https';
import { isIPv6 } from 'node:net';
import type { CoreV1Api, CoreV1Event, V1Pod, V1PodList, V1Status } from '@kubernetes/client-node';

/**
 * The five calls the sidecar makes, with @kubernetes/client-node's own signatures: a
 * CoreV1Api fits wherever this does (the tests hand the outputs one), and so does
 * KubernetesClient below.
 */
export type PodApi = Pick<CoreV1Api, 'patchNamespacedPod' | 'readNamespacedPod' | 'listNamespacedPod' | 'createNamespacedEvent' | 'deleteNamespacedPod'>;

/** Where the kubelet mounts the service account's projected token, its CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * A request the API server answered with an error status: the shape of client-node's
 * ApiException (code, body, headers), so that the error handling reads both alike
 * (kubernetesApiError.ts).
 */
export class KubernetesStatusError extends Error {
  override readonly name = 'KubernetesStatusError';
  constructor(
    readonly code: number,
    /** The Status object the API server sent (parsed), or its text when it was not JSON. */
    readonly body: V1Status | string,
    readonly headers: IncomingHttpHeaders,
    what: string,
  ) {
    super(`${what}: HTTP ${code}`);
  }
}

/** How to reach the API server and prove who we are; the files are read at every request. */
export interface ApiConnection {
  /** `https://host:port` (or http: a local emulator, `kubectl proxy`). */
  readonly server: string;
  /** A bearer token, or a file holding one (a projected token the kubelet rotates). */
  readonly token?: { readonly value: string } | { readonly file: string };
  readonly ca?: { readonly pem: string } | { readonly file: string };
  readonly cert?: { readonly pem: string } | { readonly file: string };
  readonly key?: { readonly pem: string } | { readonly file: string };
  readonly insecureSkipTlsVerify?: boolean;
  readonly tlsServerName?: string;
}

/**
 * As client-node's KubeConfig.loadFromCluster(): KUBERNETES_SERVICE_HOST/PORT (http on 80,
 * 8080 and 8001, as there), the service account's token and CA from `dir`.
 */
export function inClusterConnection(env: NodeJS.ProcessEnv, dir = SERVICE_ACCOUNT_DIR): ApiConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error('not running in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set): give --kubeconfig, or --no-label');
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  return { server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`, token: { file: `${dir}/token` }, ca: { file: `${dir}/ca.crt` } };
}

type Named<T> = { name?: string } & T;
interface KubeconfigCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
}
interface KubeconfigUser {
  token?: string;
  tokenFile?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  'auth-provider'?: { name?: string; config?: Record<string, string> };
  exec?: unknown;
  username?: string;
  password?: string;
}
interface Kubeconfig {
  'current-context'?: string;
  contexts?: Named<{ context?: { cluster?: string; user?: string } }>[];
  clusters?: Named<{ cluster?: KubeconfigCluster }>[];
  users?: Named<{ user?: KubeconfigUser }>[];
}

const fromBase64 = (data: string) => ({ pem: Buffer.from(data, 'base64').toString('utf8') });

/**
 * The current context of a kubeconfig file (YAML or JSON) as a connection, or null when its
 * user authenticates in a way only client-node implements (exec plugins, auth providers other
 * than client-node's `tokenFile`, basic auth): the caller then uses client-node itself.
 */
export async function kubeconfigConnection(path: string): Promise<ApiConnection | null> {
  const text = await readFile(path, 'utf8');
  let doc: Kubeconfig;
  try {
    doc = JSON.parse(text) as Kubeconfig;
  } catch {
    // Only a YAML kubeconfig (a developer's, or a test's) pays for the YAML parser.
    const { parse } = await import('yaml');
    doc = parse(text) as Kubeconfig;
  }
  const context = doc.contexts?.find((c) => c.name === doc['current-context'])?.context;
  if (!context) throw new Error(`no context ${JSON.stringify(doc['current-context'] ?? '')} in the file`);
  const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster?.server) throw new Error(`no cluster ${JSON.stringify(context.cluster ?? '')} with a server in the file`);
  const user = doc.users?.find((u) => u.name === context.user)?.user ?? {};
  const provider = user['auth-provider'];
  if (user.exec !== undefined || (provider && !(provider.name === 'tokenFile' && provider.config?.tokenFile)) || user.username !== undefined) return null;
  const relative = (file: string) => (file.startsWith('/') ? file : new URL(file, `file://${path}`).pathname);
  const token = user.token ? { value: user.token } : user.tokenFile ? { file: relative(user.tokenFile) } : provider?.config?.tokenFile ? { file: relative(provider.config.tokenFile) } : undefined;
  const pemOf = (data: string | undefined, file: string | undefined) => (data ? fromBase64(data) : file ? { file: relative(file) } : undefined);
  const ca = pemOf(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = pemOf(user['client-certificate-data'], user['client-certificate']);
  const key = pemOf(user['client-key-data'], user['client-key']);
  return {
    server: cluster.server,
    ...(token && { token }),
    ...(ca && { ca }),
    ...(cert && { cert }),
    ...(key && { key }),
    ...(cluster['insecure-skip-tls-verify'] === true && { insecureSkipTlsVerify: true }),
    ...(cluster['tls-server-name'] && { tlsServerName: cluster['tls-server-name'] }),
  };
}

async function pem(source: { readonly pem: string } | { readonly file: string } | undefined): Promise<string | undefined> {
  if (!source) return undefined;
  return 'pem' in source ? source.pem : readFile(source.file, 'utf8');
}

/** Larger answers are refused: the sidecar asks for its own pod and the pods labelled leader. */
const maxAnswerBytes = 8 * 1024 * 1024;

type Request<M extends keyof PodApi> = Parameters<PodApi[M]>[0];

/**
 * The sidecar's few Kubernetes API calls on node:http(s), in place of client-node's
 * CoreV1Api, which costs a sidecar about 50 MiB of memory (bench/sidecarMemory.ts). The
 * token is read from its file at every request, so a token the kubelet rotated is used at
 * once; the CA and client certificate too. Every request has a deadline (`requestTimeoutMs`)
 * after which its socket is destroyed. An error status rejects with KubernetesStatusError;
 * the callers classify and retry (kubernetesApiError.ts). Answers are the API server's JSON
 * as is (timestamps stay strings): the sidecar reads names, labels, annotations and
 * resourceVersions only. The only patch it sends is a JSON merge patch.
 */
export class KubernetesClient implements PodApi {
  private agent: Http.Agent | null = null;
  private transport: typeof Http | typeof Https | null = null;

  constructor(
    private readonly connection: ApiConnection,
    private readonly requestTimeoutMs = 30_000,
  ) {}

  patchNamespacedPod(param: Request<'patchNamespacedPod'>): Promise<V1Pod> {
    return this.request('PATCH', podPath(param.namespace, param.name), param.body, 'application/merge-patch+json');
  }

  readNamespacedPod(param: Request<'readNamespacedPod'>): Promise<V1Pod> {
    return this.request('GET', podPath(param.namespace, param.name));
  }

  listNamespacedPod(param: Request<'listNamespacedPod'>): Promise<V1PodList> {
    const query = new URLSearchParams();
    if (param.labelSelector !== undefined) query.set('labelSelector', param.labelSelector);
    if (param.fieldSelector !== undefined) query.set('fieldSelector', param.fieldSelector);
    if (param.limit !== undefined) query.set('limit', String(param.limit));
    if (param._continue !== undefined) query.set('continue', param._continue);
    const search = query.toString();
    return this.request('GET', `/api/v1/namespaces/${encodeURIComponent(param.namespace)}/pods${search ? `?${search}` : ''}`);
  }

  createNamespacedEvent(param: Request<'createNamespacedEvent'>): Promise<CoreV1Event> {
    return this.request('POST', `/api/v1/namespaces/${encodeURIComponent(param.namespace)}/events`, param.body, 'application/json');
  }

  deleteNamespacedPod(param: Request<'deleteNamespacedPod'>): Promise<V1Pod> {
    return this.request('DELETE', podPath(param.namespace, param.name), param.body, 'application/json');
  }

  /** Closes the idle kept-alive connection, if any. */
  close(): void {
    this.agent?.destroy();
  }

  private loadTransport() {
    if (this.transport) return this.transport;
    // Loaded on the first request; not with import(), which would load undici with node:http (httpServer.ts).
    const transport = new URL(this.connection.server).protocol === 'https:' ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
    // Kept-alive connections; an idle one is closed after 30 s, long before the API server would.
    this.agent = new transport.Agent({ keepAlive: true, maxSockets: 4, timeout: 30_000 });
    this.transport = transport;
    return transport;
  }

  private async request<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const what = `${method} ${path}`;
    const transport = this.loadTransport();
    const { token, ca, cert, key } = this.connection;
    // At every request: the kubelet replaces a projected token (and the CA bundle) in place.
    const [bearer, caPem, certPem, keyPem] = await Promise.all([token && ('value' in token ? token.value : readFile(token.file, 'utf8')), pem(ca), pem(cert), pem(key)]);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const url = new URL(path, this.connection.server);
    const headers: Record<string, string | number> = { Accept: 'application/json', 'User-Agent': 'zkleader-sidecar' };
    if (bearer?.trim()) headers.Authorization = `Bearer ${bearer.trim()}`;
    if (payload) {
      headers['Content-Type'] = contentType ?? 'application/json';
      headers['Content-Length'] = payload.length;
    }
    return new Promise<T>((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method,
          headers,
          agent: this.agent ?? undefined,
          ...(caPem !== undefined && { ca: caPem }),
          ...(certPem !== undefined && { cert: certPem }),
          ...(keyPem !== undefined && { key: keyPem }),
          ...(this.connection.insecureSkipTlsVerify && { rejectUnauthorized: false }),
          ...(this.connection.tlsServerName && { servername: this.connection.tlsServerName }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxAnswerBytes) req.destroy(new Error(`${what}: an answer over ${maxAnswerBytes} bytes`));
            else chunks.push(chunk);
          });
          res.on('error', reject);
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) {
              let parsed: V1Status | string = text;
              try {
                parsed = JSON.parse(text) as V1Status;
              } catch {
                // not JSON: the text as it came (a proxy's error page)
              }
              reject(new KubernetesStatusError(status, parsed, res.headers, what));
              return;
            }
            try {
              resolve((text === '' ? {} : JSON.parse(text)) as T);
            } catch {
              reject(new Error(`${what}: the answer is not JSON`));
            }
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`${what}: no answer within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(payload);
    });
  }
}

function podPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
}
