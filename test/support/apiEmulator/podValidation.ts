import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IObjectFieldSelector } from 'kubernetes-models/v1/ObjectFieldSelector';
import { validate as validatePodSchema } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Pod';
import { duplicate, forbidden, invalid, notFound, notSupported, required, type FieldError } from './fieldError.js';
import { schemaCauses } from './schemaValidation.js';
import { canonicalJson } from './canonicalJson.js';
import { isDns1123Label, isEnvVarName } from './nameSyntax.js';
import { validateObjectMeta } from './objectMetaValidation.js';

export type { FieldError } from './fieldError.js';

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

/**
 * Checks a pod against the Kubernetes OpenAPI schema (kubernetes-models' Pod validator,
 * offline) and then against the pod rules of the apiserver that this project relies on.
 * Returns the causes the apiserver would put in a 422 Invalid Status; [] when valid.
 */
export function validatePod(pod: unknown): FieldError[] {
  const schemaErrors = schemaCauses(validatePodSchema, pod);
  // The rules below read the pod through its schema types, so they run on a well-formed pod only.
  if (schemaErrors.length > 0) return schemaErrors;
  const typed = pod as IPod;
  return [...validateObjectMeta(typed.metadata), ...validateSpec(typed)];
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
    // validateLivenessProbe / validateStartupProbe: one success is all they may ask for.
    if (probe !== 'readinessProbe' && p.successThreshold !== undefined && p.successThreshold !== 1) {
      errs.push(invalid(`${path}.${probe}.successThreshold`, p.successThreshold, 'must be 1'));
    }
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
  // ValidateNonnegativeField for each (the defaults fill in zeros); the schema's int32 format bounds them above.
  for (const field of ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold'] as const) {
    const value = probe[field];
    if (value !== undefined && value < 0) errs.push(invalid(`${path}.${field}`, value, 'must be greater than or equal to 0'));
  }
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

/** What `spec` may change on a pod update (ValidatePodUpdate); everything else is frozen at creation. */
const mutableSpecNote =
  'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,' +
  '`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

/** The pod rules plus the update rule: the spec of a stored pod is immutable except for images and a few fields. */
export function validatePodUpdate(updated: unknown, stored: IPod): FieldError[] {
  const errs = validatePod(updated);
  if (errs.length > 0) return errs;
  if (canonicalJson(frozenSpec(updated as IPod)) !== canonicalJson(frozenSpec(stored))) errs.push(forbidden('spec', mutableSpecNote));
  return errs;
}

function frozenSpec(pod: IPod): unknown {
  const spec = structuredClone(pod.spec ?? { containers: [] });
  delete spec.activeDeadlineSeconds;
  delete spec.tolerations;
  delete spec.terminationGracePeriodSeconds;
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) delete c.image;
  return spec;
}
