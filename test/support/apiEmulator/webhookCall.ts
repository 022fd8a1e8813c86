import { request } from 'node:https';
import { isIP } from 'node:net';
import type { AdmissionregistrationV1WebhookClientConfig } from '@kubernetes/client-node';

/** Maps a webhook's Service to the loopback address it is reached at: `https://127.0.0.1:PORT`. */
export type ServiceResolver = (namespace: string, name: string, port: number) => string;

/** Where one webhook is called and how its certificate is checked. */
export interface WebhookEndpoint {
  /** The URL as kube-apiserver names it in errors (the Service's DNS name for a service). */
  displayUrl: string;
  /** Where the request really goes. */
  connectUrl: URL;
  /** The TLS server name the certificate must carry; undefined for an IP address. */
  servername: string | undefined;
  /** The caBundle in PEM, the only trusted roots; undefined: Node's default roots (the apiserver's system roots). */
  ca: string | undefined;
}

/** The response part of an AdmissionReview v1, as far as the apiserver reads it. */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code?: number; message?: string; reason?: string; status?: string };
  patch?: string;
  patchType?: string;
  warnings?: string[];
}

/** kube-apiserver's ErrCallingWebhook: the webhook could not be asked, or answered nonsense; failurePolicy decides. */
export class WebhookCallError extends Error {}

export function webhookEndpoint(config: AdmissionregistrationV1WebhookClientConfig, resolveService: ServiceResolver | undefined, timeoutSeconds: number): WebhookEndpoint {
  const ca = config.caBundle ? Buffer.from(config.caBundle, 'base64').toString('utf8') : undefined;
  const query = `?timeout=${timeoutSeconds}s`;
  if (config.service) {
    const { namespace, name, path = '', port = 443 } = config.service;
    const servername = `${name}.${namespace}.svc`;
    if (!resolveService) throw new WebhookCallError(`failed to call webhook: service ${namespace}/${name} cannot be reached: the emulator was given no serviceResolver`);
    const base = new URL(resolveService(namespace, name, port));
    return { displayUrl: `https://${servername}:${port}${path}${query}`, connectUrl: new URL(`${base.origin}${path}${query}`), servername, ca };
  }
  if (!config.url) throw new WebhookCallError('failed to call webhook: clientConfig has neither url nor service');
  const url = new URL(config.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { displayUrl: `${config.url}${query}`, connectUrl: new URL(`${config.url}${query}`), servername: isIP(host) === 0 ? host : undefined, ca };
}

/** POSTs the AdmissionReview and returns its verified response; WebhookCallError for every failure to get one. */
export async function callWebhook(endpoint: WebhookEndpoint, review: { request: { uid: string } }, timeoutSeconds: number): Promise<AdmissionResponse> {
  const body = await post(endpoint, JSON.stringify(review), timeoutSeconds * 1000);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new WebhookCallError(`received invalid webhook response: ${(err as Error).message}`);
  }
  return verifyResponse(parsed, review.request.uid);
}

function post(endpoint: WebhookEndpoint, payload: string, timeoutMs: number): Promise<string> {
  const failed = (reason: string): WebhookCallError => new WebhookCallError(`failed to call webhook: Post "${endpoint.displayUrl}": ${reason}`);
  return new Promise((resolve, reject) => {
    const req = request(
      endpoint.connectUrl,
      {
        method: 'POST',
        ca: endpoint.ca,
        servername: endpoint.servername,
        agent: false,
        signal: AbortSignal.timeout(timeoutMs),
        headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(failed(err.message)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          // The apiserver's REST client turns any non-2xx answer into an error naming the code.
          if (code < 200 || code > 299) reject(new WebhookCallError(`failed to call webhook: the server responded with status ${code}: ${text.slice(0, 200)}`));
          else resolve(text);
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError' || err.name === 'TimeoutError') reject(failed('context deadline exceeded'));
      else if (err.code === 'ECONNREFUSED') reject(failed(`dial tcp ${endpoint.connectUrl.host}: connect: connection refused`));
      else reject(failed(`tls or transport error: ${err.message}`));
    });
    req.end(payload);
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The checks of the apiserver's VerifyAdmissionResponse for v1 (k8s.io/apiserver/pkg/admission/plugin/webhook/request). */
function verifyResponse(review: unknown, uid: string): AdmissionResponse {
  const invalid = (why: string): WebhookCallError => new WebhookCallError(`received invalid webhook response: ${why}`);
  if (!isRecord(review) || review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    const gvk = isRecord(review) ? `${String(review.apiVersion)}, Kind=${String(review.kind)}` : typeof review;
    throw invalid(`expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${gvk}`);
  }
  const response = review.response;
  if (!isRecord(response)) throw invalid('webhook response was absent');
  if (response.uid !== uid) throw invalid(`expected response.uid=${JSON.stringify(uid)}, got ${JSON.stringify(response.uid ?? '')}`);
  if (typeof response.allowed !== 'boolean') throw invalid('expected response.allowed to be a boolean');
  if (response.patch !== undefined) {
    if (response.patchType === undefined) throw invalid('webhook returned response.patch but not response.patchType');
    if (response.patchType !== 'JSONPatch') throw invalid(`webhook returned invalid response.patchType of ${JSON.stringify(response.patchType)}`);
    if (typeof response.patch !== 'string') throw invalid('expected response.patch to be base64 in a string');
  } else if (response.patchType !== undefined) {
    throw invalid('webhook returned response.patchType but not response.patch');
  }
  if (response.warnings !== undefined && !(Array.isArray(response.warnings) && response.warnings.every((w) => typeof w === 'string'))) {
    throw invalid('expected response.warnings to be a list of strings');
  }
  if (response.status !== undefined && !isRecord(response.status)) throw invalid('expected response.status to be a Status object');
  return response as unknown as AdmissionResponse;
}
