import { invalidMessage, type FieldError } from './fieldError.js';

/** The `kind: Status` body the apiserver sends with every failure (k8s.io/apimachinery/pkg/api/errors). */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: Array<Partial<FieldError>>; retryAfterSeconds?: number };
  code: number;
}

/** A request that ends in a Status: thrown anywhere below the HTTP layer, which sends it. */
export class ApiError extends Error {
  constructor(
    readonly status: Status,
    readonly headers: Record<string, string> = {},
  ) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
  }
}

/** Which object a Status is about, in the words the apiserver uses: resource plural, API group, name. */
export interface Target {
  resource: string;
  group: string;
  name?: string;
}

function failure(code: number, reason: string, message: string, details?: Status['details']): Status {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) status.details = details;
  return status;
}

function detailsOf(t: Target): NonNullable<Status['details']> {
  const details: NonNullable<Status['details']> = {};
  if (t.name !== undefined) details.name = t.name;
  if (t.group) details.group = t.group;
  details.kind = t.resource;
  return details;
}

/** `pods "x"` or `pods.apps "x"`: how the apiserver names a group resource and object. */
function qualified(t: Target): string {
  const gr = t.group ? `${t.resource}.${t.group}` : t.resource;
  return t.name === undefined ? gr : `${gr} "${t.name}"`;
}

export function notFound(t: Target): ApiError {
  return new ApiError(failure(404, 'NotFound', `${qualified(t)} not found`, detailsOf(t)));
}

/**
 * A DeleteOptions precondition (uid, resourceVersion) that the stored object does not meet:
 * 409 Conflict, as the registry turns storage's InvalidObjError into one.
 */
export function preconditionFailed(t: Target, detail: string): ApiError {
  return new ApiError(failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(t)}: Precondition failed: ${detail}`, detailsOf(t)));
}

export function alreadyExists(t: Target): ApiError {
  return new ApiError(failure(409, 'AlreadyExists', `${qualified(t)} already exists`, detailsOf(t)));
}

export function conflict(t: Target): ApiError {
  const message = `Operation cannot be fulfilled on ${qualified(t)}: the object has been modified; please apply your changes to the latest version and try again`;
  return new ApiError(failure(409, 'Conflict', message, detailsOf(t)));
}

/**
 * 422 Invalid naming each field; `kind` is the object kind, qualified by its group in the
 * message as apierrors.NewInvalid words it: `Pod "x" is invalid: ...`,
 * `MutatingWebhookConfiguration.admissionregistration.k8s.io "x" is invalid: ...`.
 */
export function invalid(kind: string, t: Target, causes: readonly FieldError[]): ApiError {
  const details: NonNullable<Status['details']> = { name: t.name ?? '', kind, causes: [...causes] };
  if (t.group) details.group = t.group;
  return new ApiError(failure(422, 'Invalid', invalidMessage(t.group ? `${kind}.${t.group}` : kind, t.name ?? '', causes), details));
}

/** 422 for a patch that is well-formed but cannot be applied (e.g. a failed JSON patch `test`). */
export function unprocessablePatch(message: string): ApiError {
  return new ApiError(failure(422, 'Invalid', message, { causes: [{ reason: 'UnexpectedServerResponse', message }] }));
}

export function badRequest(message: string): ApiError {
  return new ApiError(failure(400, 'BadRequest', message));
}

export function forbidden(user: string, verb: string, t: Target, namespace?: string): ApiError {
  const scope = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`;
  const message = `${qualified(t)} is forbidden: User "${user}" cannot ${verb} resource "${t.resource}" in API group "${t.group}" ${scope}`;
  return new ApiError(failure(403, 'Forbidden', message, detailsOf(t)));
}

/**
 * apierrors.NewForbidden as admission uses it: `pods "x" is forbidden: DETAIL`, or
 * `pods is forbidden: DETAIL` for an object without a name yet.
 */
export function admissionForbidden(t: Target, detail: string): ApiError {
  return new ApiError(failure(403, 'Forbidden', `${qualified(t)} is forbidden: ${detail}`, detailsOf(t)));
}

export function unauthorized(): ApiError {
  return new ApiError(failure(401, 'Unauthorized', 'Unauthorized'));
}

export function tooManyRequests(): ApiError {
  return new ApiError(failure(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: 1 }), { 'Retry-After': '1' });
}

export function internalError(detail: string): ApiError {
  return new ApiError(failure(500, 'InternalError', `Internal error occurred: ${detail}`, { causes: [{ message: detail }] }));
}

export function serviceUnavailable(): ApiError {
  return new ApiError(failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'));
}

export function requestEntityTooLarge(limit: number): ApiError {
  return new ApiError(failure(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`));
}

export function unsupportedMediaType(contentType: string, accepted: readonly string[]): ApiError {
  const message = `the body of the request was in an unknown format (${contentType || 'none'}) - accepted media types include: ${accepted.join(', ')}`;
  return new ApiError(failure(415, 'UnsupportedMediaType', message));
}

export function methodNotAllowed(): ApiError {
  return new ApiError(failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
}

export function pathNotFound(): ApiError {
  return new ApiError(failure(404, 'NotFound', 'the server could not find the requested resource', {}));
}

/** The Success Status returned by DELETE of most resources (pods return the object instead). */
export function deleted(t: Target, uid: string | undefined): Status {
  const details = detailsOf(t);
  if (uid) details.uid = uid;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details, code: 200 };
}
