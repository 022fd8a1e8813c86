/**
 * Field errors shaped like the kube-apiserver's `field.Error`, rendered the way
 * it renders them into `Status.details.causes` (k8s.io/apimachinery/pkg/util/validation/field).
 */
export interface FieldError {
  field: string;
  reason: string;
  message: string;
}

/** Go's %q for strings and %v for the rest, as `field.Error.ErrorBody()` prints values. */
function quote(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined || value === null) return '""';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function required(field: string, detail = ''): FieldError {
  return { field, reason: 'FieldValueRequired', message: detail ? `Required value: ${detail}` : 'Required value' };
}

export function invalid(field: string, value: unknown, detail: string): FieldError {
  return { field, reason: 'FieldValueInvalid', message: `Invalid value: ${quote(value)}: ${detail}` };
}

export function duplicate(field: string, value: unknown): FieldError {
  return { field, reason: 'FieldValueDuplicate', message: `Duplicate value: ${quote(value)}` };
}

export function notFound(field: string, value: unknown): FieldError {
  return { field, reason: 'FieldValueNotFound', message: `Not found: ${quote(value)}` };
}

export function notSupported(field: string, value: unknown, supported: readonly string[]): FieldError {
  const list = supported.map((s) => JSON.stringify(s)).join(', ');
  return { field, reason: 'FieldValueNotSupported', message: `Unsupported value: ${quote(value)}: supported values: ${list}` };
}

export function forbidden(field: string, detail: string): FieldError {
  return { field, reason: 'FieldValueForbidden', message: `Forbidden: ${detail}` };
}

export function tooMany(field: string, actual: number, max: number): FieldError {
  return { field, reason: 'FieldValueTooMany', message: `Too many: ${actual}: must have at most ${max} items` };
}

export function typeInvalid(field: string, value: unknown, detail: string): FieldError {
  return { field, reason: 'FieldValueTypeInvalid', message: `Invalid value: ${quote(value)}: ${detail}` };
}

/** `Pod "x" is invalid: a: b` or, for several, `Pod "x" is invalid: [a: b, c: d]`, as the apiserver words it. */
export function invalidMessage(kind: string, name: string, causes: readonly FieldError[]): string {
  const parts = causes.map((c) => `${c.field}: ${c.message}`);
  const joined = parts.length === 1 ? (parts[0] ?? '') : `[${parts.join(', ')}]`;
  return `${kind} "${name}" is invalid: ${joined}`;
}
