import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { discoveryDocument } from './discovery.js';
import type { FaultTable, Verb } from './faults.js';
import type { DeleteOptions, ObjectApi, RequestScope } from './objectApi.js';
import { resolveResourcePath, type ResourceRoute } from './routes.js';
import type { ServiceAccountTokens, UserInfo } from './serviceAccountTokens.js';
import { ApiError, badRequest, internalError, methodNotAllowed, pathNotFound, requestEntityTooLarge, unauthorized } from './status.js';

/** The apiserver's limit on a request body (3 MiB, MaxRequestBodyBytes). */
export const maxBodyBytes = 3 * 1024 * 1024;

/** One line of the request log tests assert on. */
export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  contentType?: string;
  status: number;
}

export interface ApiServerDeps {
  /** The user a request's `Authorization` header stands for; undefined answers 401. */
  authenticate(authorization: string | undefined): UserInfo | undefined;
  /** The TokenRequest API (serviceaccounts/NAME/token). */
  tokens: ServiceAccountTokens;
  api: ObjectApi;
  faults: FaultTable;
  requests: RequestRecord[];
  log: Logger;
}

/** The HTTP face of the emulator: bearer authentication, body limits, faults, routing, the TokenRequest API, Status errors. */
export function createApiServer(deps: ApiServerDeps): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const contentType = req.headers['content-type'];
    res.on('finish', () => {
      const record: RequestRecord = { method: req.method ?? '', path: url.pathname, query: url.search, status: res.statusCode };
      if (contentType !== undefined) record.contentType = contentType;
      deps.requests.push(record);
    });
    const warnings: string[] = [];
    handle(deps, req, url, warnings)
      .then(({ status, body }) => send(res, status, body, warningHeaders(warnings)))
      .catch((err: unknown) => {
        if (err instanceof ApiError) return send(res, err.status.code, err.status, { ...err.headers, ...warningHeaders(warnings) });
        deps.log.error({ err, method: req.method, path: url.pathname }, 'API emulator failed on a request');
        const e = internalError(err instanceof Error ? err.message : String(err));
        return send(res, 500, e.status);
      });
  });
}

async function handle(deps: ApiServerDeps, req: IncomingMessage, url: URL, warnings: string[]): Promise<{ status: number; body: unknown }> {
  const userInfo = deps.authenticate(req.headers.authorization);
  if (!userInfo) {
    await readBody(req);
    throw unauthorized();
  }
  const raw = await readBody(req);
  const discovery = req.method === 'GET' ? discoveryDocument(url.pathname) : undefined;
  if (discovery) return { status: 200, body: discovery };
  const route = resolveResourcePath(url.pathname);
  if (!route) throw pathNotFound();
  if (route.subresource === 'token' && route.type.resource === 'serviceaccounts' && route.namespace !== undefined && route.name !== undefined) {
    // TokenRequest: what the kubelet calls for a projected token, and `kubectl create token`.
    if (req.method !== 'POST') throw methodNotAllowed();
    return { status: 201, body: deps.tokens.request(route.namespace, route.name, parseJson(raw)) };
  }
  if (route.subresource !== undefined && !(route.subresource === 'status' && route.type.hasStatusSubresource)) throw pathNotFound();
  const verb = verbOf(req.method ?? '', route);

  const scope: RequestScope = { type: route.type, userInfo, dryRun: url.searchParams.get('dryRun') === 'All', warnings };
  if (route.namespace !== undefined) scope.namespace = route.namespace;
  if (route.name !== undefined) scope.name = route.name;
  if (route.subresource === 'status') scope.subresource = 'status';

  const fault = deps.faults.take({ verb, resource: route.type.resource, group: route.type.group, namespace: route.namespace, name: route.name, user: userInfo.username });
  if (fault) {
    if (fault.delayMs > 0) await sleep(fault.delayMs);
    throw fault.error;
  }

  switch (verb) {
    case 'get':
      return { status: 200, body: deps.api.get(scope) };
    case 'list':
      if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') throw badRequest('watch is not served by the API emulator');
      return { status: 200, body: deps.api.list(scope, { labelSelector: url.searchParams.get('labelSelector') ?? '', fieldSelector: url.searchParams.get('fieldSelector') ?? '' }) };
    case 'create':
      return { status: 201, body: await deps.api.create(scope, parseJson(raw)) };
    case 'update':
      return { status: 200, body: deps.api.update(scope, parseJson(raw)) };
    case 'patch':
      return { status: 200, body: deps.api.patch(scope, req.headers['content-type'] ?? '', parseJson(raw)) };
    case 'delete':
      return { status: 200, body: deps.api.delete(scope, raw.trim() === '' ? {} : deleteOptions(parseJson(raw))) };
  }
}

/** A DELETE's body: DeleteOptions, of which the preconditions are honoured. */
function deleteOptions(body: unknown): DeleteOptions {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the body of a DELETE must be a DeleteOptions object');
  const preconditions = (body as { preconditions?: unknown }).preconditions;
  if (preconditions === undefined || preconditions === null) return {};
  if (typeof preconditions !== 'object' || Array.isArray(preconditions)) throw badRequest('DeleteOptions.preconditions must be an object');
  const { uid, resourceVersion } = preconditions as Record<string, unknown>;
  for (const [field, value] of [['uid', uid], ['resourceVersion', resourceVersion]] as const) {
    if (value !== undefined && value !== null && typeof value !== 'string') throw badRequest(`DeleteOptions.preconditions.${field} must be a string`);
  }
  return { preconditions: { ...(typeof uid === 'string' && { uid }), ...(typeof resourceVersion === 'string' && { resourceVersion }) } };
}

function verbOf(method: string, route: ResourceRoute): Verb {
  const named = route.name !== undefined;
  if (method === 'GET') return named ? 'get' : 'list';
  if (method === 'POST' && !named) return 'create';
  if (method === 'PUT' && named) return 'update';
  if (method === 'PATCH' && named) return 'patch';
  if (method === 'DELETE' && named) return 'delete';
  throw methodNotAllowed();
}

/** Reads the whole body; past the limit it keeps draining (so the client sees the answer) and then refuses. */
async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBodyBytes) chunks.push(chunk);
  }
  if (size > maxBodyBytes) throw requestEntityTooLarge(maxBodyBytes);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(raw: string): unknown {
  if (raw.trim() === '') throw badRequest('the request body is empty; expected a JSON object');
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
  }
}

/**
 * `Warning: 299 - "text"` per warning (RFC 7234 warn-code 299, agent "-"), as the
 * apiserver sends them; quotes and backslashes escaped, control characters dropped.
 */
function warningHeaders(warnings: readonly string[]): Record<string, string[]> {
  if (warnings.length === 0) return {};
  // eslint-disable-next-line no-control-regex
  const quoted = warnings.map((w) => `299 - "${w.replace(/[\x00-\x1f\x7f]/g, ' ').replace(/["\\]/g, '\\$&')}"`);
  return { Warning: quoted };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}
