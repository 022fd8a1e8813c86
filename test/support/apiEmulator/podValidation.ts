import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IObjectFieldSelector } from 'kubernetes-models/v1/ObjectFieldSelector';
import { validate as validatePodSchema } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Pod';
import { duplicate, forbidden, invalid, notFound, notSupported, required, typeInvalid, type FieldError } from './fieldError.js';
import { isDns1123Label, isDns1123Subdomain, isEnvVarName, isQualifiedName, isValidLabelValue } from './nameSyntax.js';

export type { FieldError } from './fieldError.js';

/** What the compiled ajv validator of kubernetes-models leaves on itself after a failed run. */
interface SchemaError {
  instancePath: string;
  keyword: string;
  params: { missingProperty?: string; type?: string; allowedValues?: unknown[] };
  message?: string;
}
const podSchema = validatePodSchema as ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

/** The downward API paths an env var may read (k8s validFieldPathExpressionsEnv). */
const envFieldPaths = [
  'metadata.annotations',
  'metadata.labels',
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
];
/** The paths a downwardAPI volume item may read (k8s validVolumeDownwardAPIFieldPathExpressions). */
const volumeFieldPaths = ['metadata.annotations', 'metadata.labels', 'metadata.name', 'metadata.namespace', 'metadata.uid'];
const totalAnnotationSizeLimit = 256 * 1024;

/**
 * Checks a pod against the Kubernetes OpenAPI schema (kubernetes-models' Pod validator,
 * offline) and then against the pod rules of the apiserver that this project relies on.
 * Returns the causes the apiserver would put in a 422 Invalid Status; [] when valid.
 */
export function validatePod(pod: unknown): FieldError[] {
  if (typeof pod !== 'object' || pod === null || Array.isArray(pod)) return [typeInvalid('<root>', pod, 'a Pod must be a JSON object')];
  const schemaErrors = validateSchema(pod);
  // The rules below read the pod through its schema types, so they run on a well-formed pod only.
  if (schemaErrors.length > 0) return schemaErrors;
  const typed = pod as IPod;
  return [...validateMetadata(typed), ...validateSpec(typed)];
}

function validateSchema(pod: object): FieldError[] {
  if (podSchema(pod)) return [];
  return (podSchema.errors ?? []).map((e) => {
    const segments = e.instancePath.split('/').slice(1).map(unescapePointer);
    const field = fieldPath(pod, segments);
    const value = valueAt(pod, segments);
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

function valueAt(root: unknown, segments: string[]): unknown {
  return segments.reduce(step, root);
}

function validateMetadata(pod: IPod): FieldError[] {
  const errs: FieldError[] = [];
  const meta = pod.metadata ?? {};
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

function validateSpec(pod: IPod): FieldError[] {
  const spec = pod.spec;
  if (!spec) return [required('spec')];
  const errs: FieldError[] = [];
  const volumeNames = validateVolumes(spec.volumes ?? [], errs);
  if (spec.containers.length === 0) errs.push(required('spec.containers'));

  // Regular containers are checked among themselves first; an init container then
  // clashes with any regular or earlier init container (as validateInitContainers does).
  const names = new Set<string>();
  spec.containers.forEach((c, i) => validateContainer(c, `spec.containers[${i}]`, 'regular', names, volumeNames, errs));
  (spec.initContainers ?? []).forEach((c, i) => validateContainer(c, `spec.initContainers[${i}]`, 'init', names, volumeNames, errs));
  return errs;
}

function validateVolumes(volumes: IVolume[], errs: FieldError[]): Set<string> {
  const names = new Set<string>();
  volumes.forEach((volume, i) => {
    const path = `spec.volumes[${i}]`;
    if (!volume.name) errs.push(required(`${path}.name`));
    else if (names.has(volume.name)) errs.push(duplicate(`${path}.name`, volume.name));
    else for (const msg of isDns1123Label(volume.name)) errs.push(invalid(`${path}.name`, volume.name, msg));
    names.add(volume.name);
    const sources = Object.keys(volume).filter((k) => k !== 'name');
    if (sources.length === 0) errs.push(required(path, 'must specify a volume type'));
    if (sources.length > 1) errs.push(forbidden(`${path}.${sources[1]}`, 'may not specify more than 1 volume type'));
    volume.downwardAPI?.items?.forEach((item, j) => {
      if (item.fieldRef) validateFieldRef(item.fieldRef, `${path}.downwardAPI.items[${j}].fieldRef`, volumeFieldPaths, errs);
    });
    volume.projected?.sources?.forEach((source, k) => {
      source.downwardAPI?.items?.forEach((item, j) => {
        const itemPath = `${path}.projected.sources[${k}].downwardAPI.items[${j}].fieldRef`;
        if (item.fieldRef) validateFieldRef(item.fieldRef, itemPath, volumeFieldPaths, errs);
      });
    });
  });
  return names;
}

function validateContainer(
  c: IContainer,
  path: string,
  kind: 'regular' | 'init',
  names: Set<string>,
  volumeNames: Set<string>,
  errs: FieldError[],
): void {
  if (!c.name) errs.push(required(`${path}.name`));
  else if (names.has(c.name)) errs.push(duplicate(`${path}.name`, c.name));
  else for (const msg of isDns1123Label(c.name)) errs.push(invalid(`${path}.name`, c.name, msg));
  names.add(c.name);
  if (!c.image) errs.push(required(`${path}.image`));

  if (kind === 'regular' && c.restartPolicy !== undefined) errs.push(forbidden(`${path}.restartPolicy`, 'may not be set for non-init containers'));
  if (kind === 'init' && c.restartPolicy !== undefined && c.restartPolicy !== 'Always') {
    errs.push(notSupported(`${path}.restartPolicy`, c.restartPolicy, ['Always']));
  }
  const sidecar = kind === 'init' && c.restartPolicy === 'Always';
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const p = c[probe];
    if (!p) continue;
    if (kind === 'init' && !sidecar) errs.push(forbidden(`${path}.${probe}`, 'may not be set for init containers without restartPolicy=Always'));
    validateProbe(p, `${path}.${probe}`, errs);
  }

  const mountPaths = new Set<string>();
  (c.volumeMounts ?? []).forEach((m, j) => {
    const mpath = `${path}.volumeMounts[${j}]`;
    if (!m.name) errs.push(required(`${mpath}.name`));
    else if (!volumeNames.has(m.name)) errs.push(notFound(`${mpath}.name`, m.name));
    if (!m.mountPath) errs.push(required(`${mpath}.mountPath`));
    else if (mountPaths.has(m.mountPath)) errs.push(invalid(`${mpath}.mountPath`, m.mountPath, 'must be unique'));
    mountPaths.add(m.mountPath);
  });

  (c.env ?? []).forEach((e, j) => {
    const epath = `${path}.env[${j}]`;
    if (!e.name) errs.push(required(`${epath}.name`));
    else for (const msg of isEnvVarName(e.name)) errs.push(invalid(`${epath}.name`, e.name, msg));
    if (!e.valueFrom) return;
    if (e.value) errs.push(invalid(`${epath}.valueFrom`, '', 'may not be specified when `value` is not empty'));
    const sources = Object.keys(e.valueFrom);
    if (sources.length !== 1) errs.push(invalid(`${epath}.valueFrom`, '', 'may not have more than one field specified at a time'));
    if (e.valueFrom.fieldRef) validateFieldRef(e.valueFrom.fieldRef, `${epath}.valueFrom.fieldRef`, envFieldPaths, errs);
  });

  (c.ports ?? []).forEach((p, j) => validatePortNumber(p.containerPort, `${path}.ports[${j}].containerPort`, errs));
}

function validateFieldRef(ref: IObjectFieldSelector, path: string, allowed: readonly string[], errs: FieldError[]): void {
  if (ref.apiVersion !== undefined && ref.apiVersion !== 'v1') errs.push(notSupported(`${path}.apiVersion`, ref.apiVersion, ['v1']));
  // metadata.labels['key'] and metadata.annotations['key'] select one entry.
  const subscripted = /^(metadata\.(?:labels|annotations))\['[^']+'\]$/.exec(ref.fieldPath);
  const base = subscripted?.[1] ?? ref.fieldPath;
  if (!allowed.includes(base) || (subscripted && allowed === volumeFieldPaths)) errs.push(notSupported(`${path}.fieldPath`, ref.fieldPath, allowed));
}

function validateProbe(probe: IProbe, path: string, errs: FieldError[]): void {
  const handlers = (['exec', 'httpGet', 'tcpSocket', 'grpc'] as const).filter((h) => probe[h] !== undefined);
  if (handlers.length === 0) errs.push(required(path, 'must specify a handler type'));
  if (handlers.length > 1) errs.push(forbidden(`${path}.${handlers[1]}`, 'may not specify more than 1 handler type'));
  const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
  const portPath = `${path}.${probe.httpGet ? 'httpGet' : 'tcpSocket'}.port`;
  if (typeof port === 'number') validatePortNumber(port, portPath, errs);
  else if (typeof port === 'string' && !/^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(port)) {
    errs.push(invalid(portPath, port, 'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), at most 15 characters, and contain at least one letter'));
  }
}

function validatePortNumber(port: number, path: string, errs: FieldError[]): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) errs.push(invalid(path, port, 'must be between 1 and 65535, inclusive'));
}
