/**
 * The HTTP status of a request the API server refused: client-node's ApiException and the
 * sidecar's own client's KubernetesStatusError (kubernetesClient.ts) carry it alike, as a
 * numeric `code` beside the `body` (a network error's code is a string such as ECONNREFUSED).
 * Read by shape, so that nothing here loads client-node.
 */
export function httpStatus(err: unknown): number | null {
  if (!(err instanceof Error) || !('body' in err)) return null;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : null;
}

/** A Kubernetes API request that did not answer in time. */
export class ApiTimeoutError extends Error {
  override readonly name = 'ApiTimeoutError';
}

/** Rejects with ApiTimeoutError when `promise` has not settled after `ms` (the request itself is left to finish). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ApiTimeoutError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The HTTP status of a failed request as a metric label: "403", "timeout" or "network". */
export function statusOf(err: unknown): string {
  const status = httpStatus(err);
  if (status !== null) return String(status);
  if (err instanceof ApiTimeoutError) return 'timeout';
  return 'network';
}

/** 409, 429, 5xx, timeouts and network errors heal by themselves; 401/403/404/422 do not. */
export function isRetriable(err: unknown): boolean {
  const status = httpStatus(err);
  if (status === null) return true;
  return status === 409 || status === 429 || status >= 500;
}

/** The API's own message in a failed request's body ('' when there is none). */
export function apiMessage(err: { readonly body?: unknown }): string {
  const body: unknown = err.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      return typeof parsed.message === 'string' ? parsed.message : '';
    } catch {
      return body.slice(0, 200);
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  return '';
}

/** One line: the status and the API's own message where there is one. */
export function describeApiError(err: unknown): string {
  const status = httpStatus(err);
  if (status !== null) {
    const message = apiMessage(err as { body?: unknown });
    const reason = status === 403 ? 'forbidden (403): the service account needs get, list and patch on pods and create on events' : `HTTP ${status}`;
    return message ? `${reason}: ${message}` : reason;
  }
  return (err as Error).message ?? String(err);
}
