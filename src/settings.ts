import type { V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_CONFIG,
  ANNOTATION_CONTAINERS,
  ANNOTATION_ELECTION,
  ANNOTATION_INJECT,
  ANNOTATION_LABEL,
  ANNOTATION_MOUNT_PATH,
  ANNOTATION_SESSION_TIMEOUT,
  ANNOTATION_SIDECAR_MODE,
  ANNOTATION_START,
  ANNOTATION_ZOOKEEPER,
  DEFAULT_MOUNT_PATH,
  ELECTION_FALLBACK_LABELS,
  KNOWN_ANNOTATIONS,
  KNOWN_LABELS,
  LABEL_INJECT,
  parseBooleanValue,
  parseConfigList,
  parseContainerList,
  parseMountPath,
  parseSidecarMode,
  type SidecarMode,
} from './annotations.js';
import { DEFAULT_SESSION_TIMEOUT_MS, parseSessionTimeout } from '../cli/duration.js';
import { isDns1123Label, parseDnsLabel, parseStartPolicy, parseZooKeeperConnectString, type StartPolicy } from '../cli/valueSyntax.js';
import type { ImagePullPolicy, InjectorConfig, SidecarResources, ZooKeeperAuth } from './config.js';

/** Where app containers see the shared volume: all that a reinvocation needs. */
export interface MountSettings {
  readonly mountPath: string;
  /** App containers (spec.containers) that get the read-only mount. */
  readonly containers: readonly string[];
  /** True when zkleader.io/containers chose them; false means "all", so containers added later get the mount too. */
  readonly containersChosen: boolean;
}

/** Everything the builders need, resolved from the pod's annotations over the webhook's config. */
export interface InjectionSettings extends MountSettings {
  /**
   * The election the sidecar joins; null for a configuration-only pod (zkleader.io/config
   * without zkleader.io/election): no election, no election or role label, no labelling
   * and so no API access.
   */
  readonly election: string | null;
  /** The configs (zkleader.io/config) the sidecar keeps on disk, in the order given; empty: none. */
  readonly configs: readonly string[];
  readonly zookeeper: string;
  readonly sessionTimeoutMs: number;
  readonly sidecarMode: SidecarMode;
  /**
   * zkleader.io/start: `leader` gates the app containers on leadership (cold standby): the
   * native sidecar's startupProbe asks /startz, and a started leader that loses leadership
   * deletes its own pod. `always` (the default): the app starts with the first outcome.
   */
  readonly start: StartPolicy;
  /**
   * False when zkleader.io/label is "false", and for a configuration-only pod: the sidecar
   * gets no API access (an empty directory where the token would be).
   */
  readonly label: boolean;
  /**
   * The sidecar needs the API: it gets its own projected token whatever the pod or its
   * ServiceAccount say about automounting (the webhook cannot see the ServiceAccount).
   */
  readonly projectedToken: boolean;
  /**
   * `required`: the sidecar gets its namespace's ZooKeeper credential (the Secret
   * zkleader-zookeeper) as a volume of its own. The webhook's setting alone: no
   * annotation changes it.
   */
  readonly zookeeperAuth: ZooKeeperAuth;
  /** The webhook's setting `cluster` alone (no annotation changes it); "" for none. */
  readonly cluster: string;
  readonly image: string;
  readonly imagePullPolicy: ImagePullPolicy;
  readonly resources: SidecarResources;
  readonly version: string;
}

export type Request = { kind: 'requested' } | { kind: 'not-requested' } | { kind: 'opted-out' } | { kind: 'refused'; message: string };

export type Resolved<T> = { kind: 'resolved'; settings: T } | { kind: 'refused'; message: string };

class Refusal extends Error {}

function annotationsOf(pod: V1Pod): Record<string, string> {
  return pod.metadata?.annotations ?? {};
}

function labelsOf(pod: V1Pod): Record<string, string> {
  return pod.metadata?.labels ?? {};
}

function read<T>(annotations: Record<string, string>, key: string, parse: (raw: string) => T): T | undefined {
  const raw = annotations[key];
  if (raw === undefined) return undefined;
  try {
    return parse(raw);
  } catch (err) {
    throw new Refusal(`annotation ${key}: ${(err as Error).message}`);
  }
}

/**
 * Opt-in: annotation or label `zkleader.io/inject: "true"`; either one "false" opts
 * out (an opt-out always wins). Any other value of the annotation is refused, so a
 * typo does not quietly leave a pod without its sidecar.
 */
export function injectionRequest(pod: V1Pod): Request {
  const values: boolean[] = [];
  for (const [where, map] of [['annotation', annotationsOf(pod)], ['label', labelsOf(pod)]] as const) {
    const raw = map[where === 'annotation' ? ANNOTATION_INJECT : LABEL_INJECT];
    if (raw === undefined) continue;
    try {
      values.push(parseBooleanValue(raw));
    } catch (err) {
      return { kind: 'refused', message: `${where} ${ANNOTATION_INJECT}: ${(err as Error).message}` };
    }
  }
  if (values.includes(false)) return { kind: 'opted-out' };
  return values.includes(true) ? { kind: 'requested' } : { kind: 'not-requested' };
}

/**
 * The annotation, else (unless the pod asks for configs: then it gets configuration only,
 * whatever its app labels say) the first fallback label; else the pod is refused.
 */
function electionName(pod: V1Pod, configs: readonly string[]): string | null {
  const fromAnnotation = read(annotationsOf(pod), ANNOTATION_ELECTION, parseDnsLabel);
  if (fromAnnotation !== undefined) return fromAnnotation;
  if (configs.length > 0) return null;
  for (const label of ELECTION_FALLBACK_LABELS) {
    const value = labelsOf(pod)[label];
    if (value === undefined) continue;
    if (!isDns1123Label(value)) {
      throw new Refusal(
        `label ${label} ${JSON.stringify(value)} cannot name the election: expected a DNS-1123 label; set the annotation ${ANNOTATION_ELECTION}`,
      );
    }
    return value;
  }
  throw new Refusal(
    `no election name: set the annotation ${ANNOTATION_ELECTION} to a DNS-1123 label, or give the pod the label ${ELECTION_FALLBACK_LABELS.join(' or ')}`,
  );
}

function chosenContainers(pod: V1Pod, chosen: readonly string[] | undefined): readonly string[] {
  const appContainers = (pod.spec?.containers ?? []).map((c) => c.name);
  if (chosen === undefined) return appContainers;
  for (const name of chosen) {
    if (appContainers.includes(name)) continue;
    const isInit = (pod.spec?.initContainers ?? []).some((c) => c.name === name);
    throw new Refusal(
      `annotation ${ANNOTATION_CONTAINERS} names ${isInit ? 'the init container' : 'the container'} ${JSON.stringify(name)}` +
        `, which is not an app container of the pod; expected names from spec.containers: ${appContainers.join(', ')}`,
    );
  }
  return chosen;
}

function refusing<T>(resolve: () => T): Resolved<T> {
  try {
    return { kind: 'resolved', settings: resolve() };
  } catch (err) {
    if (err instanceof Refusal) return { kind: 'refused', message: err.message };
    throw err;
  }
}

function mountSettings(pod: V1Pod): MountSettings {
  const chosen = read(annotationsOf(pod), ANNOTATION_CONTAINERS, parseContainerList);
  return {
    mountPath: read(annotationsOf(pod), ANNOTATION_MOUNT_PATH, parseMountPath) ?? DEFAULT_MOUNT_PATH,
    containers: chosenContainers(pod, chosen),
    containersChosen: chosen !== undefined,
  };
}

/** The mount path and the chosen containers alone (an injected pod needs nothing else). */
export function resolveMountSettings(pod: V1Pod): Resolved<MountSettings> {
  return refusing(() => mountSettings(pod));
}

/**
 * Classic mode keeps the sidecar in spec.containers, where it never exits: a pod whose
 * restartPolicy is not Always (a Job's or CronJob's) would then never complete. A mode
 * the pod asks for is refused; the config's default is replaced by native, with a warning.
 */
function sidecarMode(pod: V1Pod, config: InjectorConfig, warnings: string[]): SidecarMode {
  const annotated = read(annotationsOf(pod), ANNOTATION_SIDECAR_MODE, parseSidecarMode);
  const mode = annotated ?? config.sidecarMode;
  const restartPolicy = pod.spec?.restartPolicy ?? 'Always';
  if (mode === 'native' || restartPolicy === 'Always') return mode;
  const why = `with restartPolicy ${restartPolicy} (a Job's or CronJob's pod) the classic sidecar never exits, so the pod would never complete`;
  if (annotated !== undefined) throw new Refusal(`annotation ${ANNOTATION_SIDECAR_MODE}: "classic" cannot be used ${why}; set it to "native"`);
  warnings.push(`the sidecar is injected in native mode although the webhook's sidecarMode is classic: ${why}`);
  return 'native';
}

/**
 * Whether the sidecar labels its pod: by default when it joins an election. A
 * configuration-only pod has no role to label, so asking for labelling there is refused.
 */
function labelling(annotated: boolean | undefined, election: string | null): boolean {
  if (election !== null) return annotated ?? true;
  if (annotated === true) {
    throw new Refusal(
      `annotation ${ANNOTATION_LABEL}: "true" needs an election, and this pod has ${ANNOTATION_CONFIG} without ${ANNOTATION_ELECTION} (configuration only, nothing to label); ` +
        `set the annotation ${ANNOTATION_ELECTION} to a DNS-1123 label, or remove ${ANNOTATION_LABEL}`,
    );
  }
  return false;
}

/**
 * Cold standby needs the three things only a labelling native sidecar in an election has:
 * a startupProbe that holds the app containers back (classic mode has none: its app starts
 * beside the sidecar), a leadership to wait for, and API access to delete its own pod.
 */
function startPolicy(annotated: StartPolicy | undefined, election: string | null, mode: SidecarMode, label: boolean): StartPolicy {
  if (annotated !== 'leader') return annotated ?? 'always';
  const refuse = (why: string, fix: string): never => {
    throw new Refusal(`annotation ${ANNOTATION_START}: "leader" ${why}; ${fix}`);
  };
  if (election === null) {
    refuse(`needs an election, and this pod has ${ANNOTATION_CONFIG} without ${ANNOTATION_ELECTION} (configuration only)`, `set the annotation ${ANNOTATION_ELECTION} to a DNS-1123 label, or remove ${ANNOTATION_START}`);
  }
  if (mode !== 'native') {
    refuse(
      'needs the native sidecar (an init container whose startupProbe holds the app containers back), and this pod would get the classic one, which cannot keep its app from starting',
      `set the annotation ${ANNOTATION_SIDECAR_MODE} to "native", or remove ${ANNOTATION_START}`,
    );
  }
  if (!label) {
    refuse(`needs API access (a started leader that loses leadership deletes its own pod), and ${ANNOTATION_LABEL} is "false"`, `remove ${ANNOTATION_LABEL}, or remove ${ANNOTATION_START}`);
  }
  return 'leader';
}

/**
 * Reads the pod's zkleader.io annotations over the config; the first invalid one
 * refuses. Warnings about choices made for the pod are appended to `warnings`.
 */
export function resolveSettings(pod: V1Pod, config: InjectorConfig, warnings: string[] = []): Resolved<InjectionSettings> {
  const annotations = annotationsOf(pod);
  return refusing(() => {
    const configs = read(annotations, ANNOTATION_CONFIG, parseConfigList) ?? [];
    const election = electionName(pod, configs);
    const zookeeper = read(annotations, ANNOTATION_ZOOKEEPER, parseZooKeeperConnectString) ?? config.zookeeper;
    if (zookeeper === undefined) {
      throw new Refusal(
        `no ZooKeeper to use: set the annotation ${ANNOTATION_ZOOKEEPER} to host:port[,host:port...][/chroot] (the webhook has no default)`,
      );
    }
    const label = labelling(read(annotations, ANNOTATION_LABEL, parseBooleanValue), election);
    // In the order the refusals were always checked: the session timeout before the mode.
    const sessionTimeoutMs = read(annotations, ANNOTATION_SESSION_TIMEOUT, parseSessionTimeout) ?? DEFAULT_SESSION_TIMEOUT_MS;
    const mode = sidecarMode(pod, config, warnings);
    return {
      election,
      configs,
      zookeeper,
      sessionTimeoutMs,
      sidecarMode: mode,
      start: startPolicy(read(annotations, ANNOTATION_START, parseStartPolicy), election, mode, label),
      ...mountSettings(pod),
      label,
      projectedToken: label,
      zookeeperAuth: config.zookeeperAuth,
      cluster: config.cluster,
      image: config.image,
      imagePullPolicy: config.imagePullPolicy,
      resources: config.resources,
      version: config.version,
    };
  });
}

/** Admission warnings for zkleader.io keys this injector does not know (likely typos). */
export function unknownKeyWarnings(pod: V1Pod): string[] {
  const warnings: string[] = [];
  for (const key of Object.keys(annotationsOf(pod))) {
    if (key.startsWith('zkleader.io/') && !KNOWN_ANNOTATIONS.has(key)) {
      warnings.push(`unknown annotation ${key} is ignored (a typo?)`);
    }
  }
  for (const key of Object.keys(labelsOf(pod))) {
    if (key.startsWith('zkleader.io/') && !KNOWN_LABELS.has(key)) {
      warnings.push(`unknown label ${key} is ignored (a typo?)`);
    }
  }
  return warnings;
}
