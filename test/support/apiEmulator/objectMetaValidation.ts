import { invalid, required, type FieldError } from './fieldError.js';
import { isDns1123Label, isDns1123Subdomain, isQualifiedName, isValidLabelValue } from './nameSyntax.js';

/** The metadata fields every object shares that the apiserver checks (ValidateObjectMeta). */
export interface ObjectMetaLike {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const totalAnnotationSizeLimit = 256 * 1024;

/** Name (DNS-1123 subdomain), namespace, label keys and values, annotation keys and total size. */
export function validateObjectMeta(metadata: ObjectMetaLike | undefined): FieldError[] {
  const errs: FieldError[] = [];
  const meta = metadata ?? {};
  if (!meta.name) errs.push(required('metadata.name', 'name or generateName is required'));
  else for (const msg of isDns1123Subdomain(meta.name)) errs.push(invalid('metadata.name', meta.name, msg));
  if (meta.namespace) for (const msg of isDns1123Label(meta.namespace)) errs.push(invalid('metadata.namespace', meta.namespace, msg));
  for (const [key, value] of Object.entries(meta.labels ?? {})) {
    for (const msg of isQualifiedName(key)) errs.push(invalid('metadata.labels', key, msg));
    for (const msg of isValidLabelValue(value)) errs.push(invalid('metadata.labels', value, msg));
  }
  let annotationBytes = 0;
  for (const [key, value] of Object.entries(meta.annotations ?? {})) {
    for (const msg of isQualifiedName(key.toLowerCase())) errs.push(invalid('metadata.annotations', key, msg));
    annotationBytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  if (annotationBytes > totalAnnotationSizeLimit) {
    errs.push({ field: 'metadata.annotations', reason: 'FieldValueTooLong', message: `Too long: may not be more than ${totalAnnotationSizeLimit} bytes` });
  }
  return errs;
}

