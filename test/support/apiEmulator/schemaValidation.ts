import { invalid, notSupported, required, typeInvalid, type FieldError } from './fieldError.js';

/** What a compiled ajv validator of kubernetes-models leaves on itself after a failed run. */
interface SchemaError {
  instancePath: string;
  keyword: string;
  params: { missingProperty?: string; type?: string; allowedValues?: unknown[] };
  message?: string;
}
/** The `validate` export of a `kubernetes-models/_schemas/*` module (typed there as returning boolean only). */
export type SchemaValidator = (data: unknown) => boolean;

/**
 * Runs a kubernetes-models OpenAPI validator (offline) and turns its errors into the
 * causes the apiserver would report, with apiserver field paths.
 */
export function schemaCauses(validator: SchemaValidator, obj: unknown): FieldError[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return [typeInvalid('<root>', obj, 'an object must be a JSON object')];
  if (validator(obj)) return [];
  const errors = (validator as SchemaValidator & { errors?: SchemaError[] | null }).errors ?? [];
  return errors.map((e) => {
    const segments = e.instancePath.split('/').slice(1).map(unescapePointer);
    const field = fieldPath(obj, segments);
    const value = segments.reduce(step, obj);
    switch (e.keyword) {
      case 'required':
        return required(joinField(field, e.params.missingProperty ?? ''));
      case 'type':
        return typeInvalid(field, value, `must be of type ${e.params.type ?? 'unknown'}`);
      case 'enum':
        return notSupported(field, value, (e.params.allowedValues ?? []).map(String));
      default:
        return invalid(field, value, e.message ?? e.keyword);
    }
  });
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** JSON pointer segments → the apiserver's field path: `spec.containers[0].name`, `metadata.labels[a/b]`. */
function fieldPath(root: unknown, segments: string[]): string {
  let path = '';
  let node: unknown = root;
  for (const seg of segments) {
    if (Array.isArray(node)) path += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) path = joinField(path, seg);
    else path += `[${seg}]`;
    node = step(node, seg);
  }
  return path || '<root>';
}

function joinField(parent: string, child: string): string {
  return parent && parent !== '<root>' ? `${parent}.${child}` : child;
}

function step(node: unknown, seg: string): unknown {
  if (typeof node !== 'object' || node === null) return undefined;
  return (node as Record<string, unknown>)[seg];
}
