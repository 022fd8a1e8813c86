import { createHash } from 'node:crypto';
import type { V1Container, V1ObjectMeta, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { ANNOTATION_LABEL, ANNOTATION_LEADER_EPOCH, ANNOTATION_MOUNT_PATH, ANNOTATION_STATUS, isSameOrUnder, LABEL_ELECTION, LABEL_ROLE } from './annotations.js';
import { SIDECAR_NAME, SIDECAR_PORT, SIDECAR_PORT_NAME, SIDECAR_UID, buildSidecar } from './buildSidecar.js';
import { CREDENTIAL_VOLUME_NAME, TOKEN_VOLUME_NAME, VOLUME_NAME, buildAppMount, buildVolumes } from './buildVolumes.js';
import type { InjectorConfig } from './config.js';
import { injectionRequest, resolveMountSettings, resolveSettings, unknownKeyWarnings, type InjectionSettings, type MountSettings } from './settings.js';

export type SkipReason = 'not-requested' | 'opted-out' | 'already-injected';

export type InjectResult =
  | { kind: 'injected'; pod: V1Pod; warnings: string[] }
  | { kind: 'skipped'; reason: SkipReason; warnings: string[] }
  | { kind: 'refused'; message: string; code: 400; warnings: string[] };

/** The idempotency record in the `zkleader.io/status` annotation. */
export interface InjectionStatus {
  version: string;
  /** Of the sidecar container and volumes as injected: a changed template shows in a diff. */
  templateHash: string;
  injected: { containers: string[]; volumes: string[]; mounts: string[] };
}

class Refusal extends Error {}

function appContainers(pod: V1Pod): V1Container[] {
  return (pod.spec?.containers ?? []).filter((c) => c.name !== SIDECAR_NAME);
}

function findSidecar(pod: V1Pod): V1Container | undefined {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === SIDECAR_NAME);
}

/**
 * The sidecar is ours when the pod's zkleader.io/status record says this injector added
 * it (by the webhook or `zkleader inject`), whatever later webhooks did to its command.
 */
function injectedRecord(pod: V1Pod): InjectionStatus | undefined {
  const status = parseStatus(pod.metadata?.annotations?.[ANNOTATION_STATUS]);
  return status?.injected.containers.includes(SIDECAR_NAME) ? status : undefined;
}

/**
 * On CREATE a pod never leads: its sidecar has not joined any election yet. A pod copied
 * from a running leader (or written by hand) would otherwise keep `zkleader.io/role:
 * leader` and the epoch, and the leader-only Service would route to it.
 */
function startsAsFollower(metadata: V1ObjectMeta | undefined, labelled: boolean): V1ObjectMeta {
  const labels = { ...metadata?.labels };
  if (labelled || labels[LABEL_ROLE] !== undefined) labels[LABEL_ROLE] = 'follower';
  const annotations = { ...metadata?.annotations };
  delete annotations[ANNOTATION_LEADER_EPOCH];
  // A pod without labels (a configuration-only one gets none from us) is not given an empty map.
  return { ...metadata, ...((metadata?.labels !== undefined || Object.keys(labels).length > 0) && { labels }), annotations };
}

/**
 * The election label for a pod that joins one; a configuration-only pod gets none, so no
 * Service that selects an election's pods (the leader-only one) can select it.
 */
function withElectionLabel(metadata: V1ObjectMeta, election: string | null): V1ObjectMeta {
  return election === null ? metadata : { ...metadata, labels: { ...metadata.labels, [LABEL_ELECTION]: election } };
}

/** Whether startsAsFollower would change anything. */
function leadsOnCreate(pod: V1Pod): boolean {
  const role = pod.metadata?.labels?.[LABEL_ROLE];
  return (role !== undefined && role !== 'follower') || pod.metadata?.annotations?.[ANNOTATION_LEADER_EPOCH] !== undefined;
}

function hasSharedMount(container: V1Container): boolean {
  return (container.volumeMounts ?? []).some((m) => m.name === VOLUME_NAME);
}

/** The containers that get the mount: the chosen ones, or every app container (also ones added since). */
function mountTargets(pod: V1Pod, settings: MountSettings): V1Container[] {
  const all = appContainers(pod);
  return settings.containersChosen ? all.filter((c) => settings.containers.includes(c.name)) : all;
}

/** `/a/b//` → `/a/b`, `//` → `/`. A loop, not /\/+$/: that regex takes quadratic time on a long run of '/'. */
function withoutTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 1 && path.charCodeAt(end - 1) === 0x2f) end--;
  return path.slice(0, end);
}

/** Volumes the kubelet always mounts read-only: no mount point can be made inside them. */
function isReadOnlyVolume(pod: V1Pod, name: string): boolean {
  const volume = (pod.spec?.volumes ?? []).find((v) => v.name === name);
  return volume !== undefined && (volume.configMap !== undefined || volume.secret !== undefined || volume.downwardAPI !== undefined || volume.projected !== undefined);
}

/**
 * The container with the read-only mount added (a new object: the input pod is never
 * changed). Refused where the container runtime could not mount it: at another mount's
 * path; above another mount (its mount point would have to be made inside our read-only
 * volume); or inside a read-only mount (ours would need a mount point made there).
 */
function withAppMount(pod: V1Pod, container: V1Container, settings: MountSettings): V1Container {
  const at = settings.mountPath;
  const refuse = (why: string): never => {
    throw new Refusal(`container ${JSON.stringify(container.name)} ${why}; set the annotation ${ANNOTATION_MOUNT_PATH} to a free absolute path`);
  };
  for (const mount of container.volumeMounts ?? []) {
    const path = withoutTrailingSlashes(mount.mountPath);
    const volume = JSON.stringify(mount.name);
    if (path === at) refuse(`already mounts the volume ${volume} at ${at}`);
    if (isSameOrUnder(path, at)) refuse(`mounts the volume ${volume} at ${path}, inside ${at}, where the zkleader volume would be mounted read-only`);
    if ((path === '/' || isSameOrUnder(at, path)) && (mount.readOnly === true || isReadOnlyVolume(pod, mount.name))) {
      refuse(`mounts the volume ${volume} read-only at ${path}, so no mount point can be made for ${at} inside it`);
    }
  }
  return { ...container, volumeMounts: [...(container.volumeMounts ?? []), buildAppMount(settings)] };
}

/** spec.containers with the mount added to `targets`; untouched containers are shared with the input. */
function mountedContainers(pod: V1Pod, targets: readonly V1Container[], settings: MountSettings): V1Container[] {
  const chosen = new Set(targets);
  return (pod.spec?.containers ?? []).map((c) => (chosen.has(c) ? withAppMount(pod, c, settings) : c));
}

// The sidecar and volumes follow from the settings alone; a webhook sees the same few
// settings again and again, so their hash is computed once per distinct settings.
const templateHashes = new Map<string, string>();

function templateHash(settings: InjectionSettings, sidecar: V1Container, volumes: unknown[]): string {
  const key = JSON.stringify(settings);
  let hash = templateHashes.get(key);
  if (hash === undefined) {
    hash = createHash('sha256').update(JSON.stringify({ sidecar, volumes })).digest('hex').slice(0, 16);
    if (templateHashes.size >= 1024) templateHashes.clear();
    templateHashes.set(key, hash);
  }
  return hash;
}

/** A real record is a few hundred bytes; anything longer is not ours, and is not parsed (it could be a JSON bomb). */
const MAX_STATUS_LENGTH = 4096;

function parseStatus(raw: string | undefined): InjectionStatus | undefined {
  if (raw === undefined || raw.length > MAX_STATUS_LENGTH) return undefined;
  try {
    const value = JSON.parse(raw) as Partial<InjectionStatus>;
    const injected = value.injected;
    const isList = (list: unknown): list is string[] => Array.isArray(list) && list.every((x) => typeof x === 'string');
    if (typeof value.version !== 'string' || typeof value.templateHash !== 'string' || !injected) return undefined;
    if (!isList(injected.containers) || !isList(injected.volumes) || !isList(injected.mounts)) return undefined;
    return value as InjectionStatus;
  } catch {
    return undefined;
  }
}

function withStatus(pod: V1Pod, status: InjectionStatus): V1ObjectMeta {
  return { ...pod.metadata, annotations: { ...pod.metadata?.annotations, [ANNOTATION_STATUS]: JSON.stringify(status) } };
}

/** The well-known node label a pod selects its operating system by. */
const OS_LABEL = 'kubernetes.io/os';

/** What a pod may not be or have for the sidecar to work in it; refusals name the field. */
function checkPodSupported(pod: V1Pod, settings: InjectionSettings, warnings: string[]): void {
  const spec = pod.spec;
  if (spec?.os?.name === 'windows') {
    throw new Refusal('spec.os.name is "windows": the zkleader sidecar is a Linux container; inject it only into Linux pods');
  }
  if (spec?.nodeSelector?.[OS_LABEL] === 'windows') {
    throw new Refusal(`spec.nodeSelector ${OS_LABEL} is "windows": the zkleader sidecar is a Linux container; inject it only into Linux pods`);
  }
  if (spec?.hostNetwork === true) {
    throw new Refusal(
      `spec.hostNetwork: true is not supported: the sidecar would hold port ${SIDECAR_PORT} on the node (the API server sets hostPort ${SIDECAR_PORT}, ` +
        'so two such pods could not share a node), and with the default dnsPolicy ClusterFirst it cannot resolve the ZooKeeper Service; run the pod without hostNetwork',
    );
  }
  const credential = settings.zookeeperAuth === 'required';
  if (spec?.shareProcessNamespace === true && (settings.projectedToken || credential)) {
    const secrets = [settings.projectedToken && 'service account token', credential && 'ZooKeeper credential'].filter(Boolean).join(' and ');
    const risk = `spec.shareProcessNamespace: true lets app containers that run as uid ${SIDECAR_UID}, or as root, read the sidecar's ${secrets} through /proc`;
    if (settings.projectedToken && spec.automountServiceAccountToken === false) {
      throw new Refusal(`${risk}, and this pod gives its app containers no token of their own; drop shareProcessNamespace, or set ${ANNOTATION_LABEL}: "false"`);
    }
    warnings.push(`${risk}; run the app containers as another non-root uid`);
  }
}

/** The volumes only the sidecar may mount, with what each holds. */
function sidecarOnlyVolumes(credential: boolean): [name: string, holds: string][] {
  const volumes: [string, string][] = [[TOKEN_VOLUME_NAME, 'token']];
  if (credential) volumes.push([CREDENTIAL_VOLUME_NAME, 'ZooKeeper credential']);
  return volumes;
}

/**
 * A mount of one of the sidecar's own volumes in another container: on a fresh pod, a
 * mount of a volume the pod lacks would be satisfied by ours; on a reinvocation, a
 * container added by a later webhook would get it.
 */
function checkSidecarOnlyMounts(pod: V1Pod, credential: boolean): void {
  const others = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].filter((c) => c.name !== SIDECAR_NAME);
  for (const [name, holds] of sidecarOnlyVolumes(credential)) {
    for (const container of others) {
      if ((container.volumeMounts ?? []).some((m) => m.name === name)) {
        throw new Refusal(`container ${JSON.stringify(container.name)} mounts the volume ${JSON.stringify(name)}, the zkleader sidecar's own ${holds}; remove the mount`);
      }
    }
  }
}

function checkNameClashes(pod: V1Pod, settings: InjectionSettings): void {
  const volumes = pod.spec?.volumes ?? [];
  const credential = settings.zookeeperAuth === 'required';
  for (const name of [VOLUME_NAME, TOKEN_VOLUME_NAME, ...(credential ? [CREDENTIAL_VOLUME_NAME] : [])]) {
    if (volumes.some((v) => v.name === name)) {
      throw new Refusal(`the pod already has a volume named ${JSON.stringify(name)}, which zkleader needs for its own volume; rename the pod's volume`);
    }
  }
  checkSidecarOnlyMounts(pod, credential);
  for (const container of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    for (const port of container.ports ?? []) {
      if (port.containerPort === SIDECAR_PORT) {
        throw new Refusal(
          `container ${JSON.stringify(container.name)} declares port ${SIDECAR_PORT}, on which the zkleader sidecar listens; use another port`,
        );
      }
      if (port.name === SIDECAR_PORT_NAME) {
        throw new Refusal(
          `container ${JSON.stringify(container.name)} declares a port named ${JSON.stringify(SIDECAR_PORT_NAME)}, the name of the zkleader sidecar's port; rename it`,
        );
      }
    }
  }
}

/**
 * Reinvocation: the sidecar is there; containers added since (by other webhooks) get
 * the mount. Only the mount annotations matter, so a pod injected offline with another
 * config is not refused here for settings it already has.
 */
function topUp(pod: V1Pod, status: InjectionStatus, settings: MountSettings, warnings: string[]): InjectResult {
  if (!(pod.spec?.volumes ?? []).some((v) => v.name === VOLUME_NAME)) {
    throw new Refusal(
      `${ANNOTATION_STATUS} records the zkleader sidecar, but the pod has no volume ${JSON.stringify(VOLUME_NAME)}; ` +
        `remove the ${JSON.stringify(SIDECAR_NAME)} container and the ${ANNOTATION_STATUS} annotation to have it injected afresh`,
    );
  }
  checkSidecarOnlyMounts(pod, status.injected.volumes.includes(CREDENTIAL_VOLUME_NAME));
  const missing = mountTargets(pod, settings).filter((c) => !hasSharedMount(c));
  if (missing.length === 0 && !leadsOnCreate(pod)) return { kind: 'skipped', reason: 'already-injected', warnings };
  const mounts = [...status.injected.mounts, ...missing.map((c) => c.name)];
  const withMounts = missing.length === 0 ? pod.metadata : withStatus(pod, { ...status, injected: { ...status.injected, mounts } });
  const result: V1Pod = {
    ...pod,
    metadata: startsAsFollower(withMounts, false),
    spec: { ...(pod.spec as V1PodSpec), containers: mountedContainers(pod, missing, settings) },
  };
  return { kind: 'injected', pod: result, warnings };
}

function freshStatus(sidecar: V1Container, volumes: { name: string }[], settings: InjectionSettings, mounts: string[]): InjectionStatus {
  return {
    version: settings.version,
    templateHash: templateHash(settings, sidecar, volumes),
    injected: { containers: [sidecar.name], volumes: volumes.map((v) => v.name), mounts },
  };
}

function injectFresh(pod: V1Pod, settings: InjectionSettings, warnings: string[]): InjectResult {
  checkPodSupported(pod, settings, warnings);
  checkNameClashes(pod, settings);
  const spec = pod.spec as V1PodSpec;
  const sidecar = buildSidecar(settings);
  const volumes = buildVolumes(settings);
  const targets = mountTargets(pod, settings);
  const containers = mountedContainers(pod, targets, settings);
  const native = settings.sidecarMode === 'native';
  // A new pod is never the leader until its sidecar says so (without labelling nobody would update the role).
  const recorded = withStatus(pod, freshStatus(sidecar, volumes, settings, targets.map((c) => c.name)));
  const metadata = startsAsFollower(withElectionLabel(recorded, settings.election), settings.label);
  const result: V1Pod = {
    ...pod,
    metadata,
    spec: {
      ...spec,
      containers: native ? containers : [...containers, sidecar],
      ...(native && { initContainers: [...(spec.initContainers ?? []), sidecar] }),
      volumes: [...(spec.volumes ?? []), ...volumes],
    },
  };
  return { kind: 'injected', pod: result, warnings };
}

/**
 * The one injection, shared by the webhook and `zkleader inject`: pure, no I/O.
 * Returns the pod with the sidecar, the volume, mounts, labels and the status
 * annotation (a new object that shares unchanged parts with `pod`, which is never
 * modified); or why nothing was done; or a refusal naming what is wrong.
 * inject(inject(p).pod) is skipped as already injected.
 */
export function inject(pod: V1Pod, config: InjectorConfig): InjectResult {
  const request = injectionRequest(pod);
  if (request.kind === 'refused') return { kind: 'refused', message: request.message, code: 400, warnings: [] };
  if (request.kind !== 'requested') return { kind: 'skipped', reason: request.kind, warnings: [] };
  const warnings = unknownKeyWarnings(pod);
  const refused = (message: string): InjectResult => ({ kind: 'refused', message, code: 400, warnings });
  try {
    const existing = findSidecar(pod);
    const record = injectedRecord(pod);
    if (existing && !record) {
      return refused(
        `the pod already has a container named ${JSON.stringify(SIDECAR_NAME)} that zkleader did not inject (no ${ANNOTATION_STATUS} record lists it); rename it`,
      );
    }
    if (existing && record) {
      const mounts = resolveMountSettings(pod);
      return mounts.kind === 'refused' ? refused(mounts.message) : topUp(pod, record, mounts.settings, warnings);
    }
    const settings = resolveSettings(pod, config, warnings);
    return settings.kind === 'refused' ? refused(settings.message) : injectFresh(pod, settings.settings, warnings);
  } catch (err) {
    if (err instanceof Refusal) return refused(err.message);
    throw err;
  }
}
