/**
 * The AdmissionReview `admission.k8s.io/v1` envelope: checking what the API server
 * sends, and building what goes back. Nothing else is read from the body.
 */
export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  operation: string;
  subResource: string | undefined;
  namespace: string | undefined;
  name: string | undefined;
  /** Checked by whoever understands its kind. */
  object: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON patch. */
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** The body is not an AdmissionReview v1 with a request: HTTP 400. */
export class MalformedReviewError extends Error {
  override readonly name = 'MalformedReviewError';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || typeof value === 'string') return value ?? undefined;
  throw new MalformedReviewError(`${field}: expected a string`);
}

export function readAdmissionReview(body: unknown): AdmissionRequest {
  if (!isRecord(body)) throw new MalformedReviewError(`expected an AdmissionReview object, got ${body === null ? 'null' : typeof body}`);
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    throw new MalformedReviewError(`apiVersion: expected ${JSON.stringify(ADMISSION_API_VERSION)}, got ${JSON.stringify(body.apiVersion ?? null)}`);
  }
  if (body.kind !== 'AdmissionReview') throw new MalformedReviewError(`kind: expected "AdmissionReview", got ${JSON.stringify(body.kind ?? null)}`);
  const request = body.request;
  if (!isRecord(request)) throw new MalformedReviewError('request: expected an object (the AdmissionRequest)');
  if (typeof request.uid !== 'string' || request.uid === '') throw new MalformedReviewError('request.uid: expected a non-empty string');
  const kind = request.kind;
  if (!isRecord(kind) || typeof kind.version !== 'string' || typeof kind.kind !== 'string' || (kind.group !== undefined && typeof kind.group !== 'string')) {
    throw new MalformedReviewError('request.kind: expected {group, version, kind} strings');
  }
  if (typeof request.operation !== 'string') throw new MalformedReviewError('request.operation: expected a string such as "CREATE"');
  return {
    uid: request.uid,
    kind: { group: (kind.group as string | undefined) ?? '', version: kind.version, kind: kind.kind },
    operation: request.operation,
    subResource: optionalString(request.subResource, 'request.subResource'),
    namespace: optionalString(request.namespace, 'request.namespace'),
    name: optionalString(request.name, 'request.name'),
    object: request.object,
  };
}

export function reviewResponse(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}
