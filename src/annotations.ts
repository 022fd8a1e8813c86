/**
 * Every `zkleader.io/*` key the injector reads or writes, with the parsing of
 * each input value. Parsers throw an Error whose message states the expected form;
 * the caller prefixes the annotation's name.
 */
import { parseDnsSubdomain } from '../cli/valueSyntax.js';

export const ANNOTATION_INJECT = 'zkleader.io/inject';
export const ANNOTATION_ELECTION = 'zkleader.io/election';
export const ANNOTATION_ZOOKEEPER = 'zkleader.io/zookeeper';
export const ANNOTATION_SESSION_TIMEOUT = 'zkleader.io/session-timeout';
export const ANNOTATION_MOUNT_PATH = 'zkleader.io/mount-path';
export const ANNOTATION_CONTAINERS = 'zkleader.io/containers';
export const ANNOTATION_SIDECAR_MODE = 'zkleader.io/sidecar-mode';
export const ANNOTATION_LABEL = 'zkleader.io/label';
/** Configs (in ZooKeeper, `zkleader config set`) the sidecar keeps on disk; without zkleader.io/election the pod gets configuration only. */
export const ANNOTATION_CONFIG = 'zkleader.io/config';
/** `leader`: the app containers start only once this pod leads (cold standby; native mode only). Default `always`. */
export const ANNOTATION_START = 'zkleader.io/start';
/** Written by the injector: the idempotency record. */
export const ANNOTATION_STATUS = 'zkleader.io/status';
/** Written by the sidecar on the leader pod. */
export const ANNOTATION_LEADER_EPOCH = 'zkleader.io/leader-epoch';

/** `zkleader.io/inject` may also be a label (the webhook's Fail entry selects on it). */
export const LABEL_INJECT = ANNOTATION_INJECT;
export const LABEL_ROLE = 'zkleader.io/role';
export const LABEL_ELECTION = 'zkleader.io/election';
/** Where the election name comes from when the annotation is absent, in order. */
export const ELECTION_FALLBACK_LABELS = ['app.kubernetes.io/name', 'app'] as const;

export const KNOWN_ANNOTATIONS: ReadonlySet<string> = new Set([
  ANNOTATION_INJECT,
  ANNOTATION_ELECTION,
  ANNOTATION_ZOOKEEPER,
  ANNOTATION_SESSION_TIMEOUT,
  ANNOTATION_MOUNT_PATH,
  ANNOTATION_CONTAINERS,
  ANNOTATION_SIDECAR_MODE,
  ANNOTATION_LABEL,
  ANNOTATION_CONFIG,
  ANNOTATION_START,
  ANNOTATION_STATUS,
  ANNOTATION_LEADER_EPOCH,
]);
export const KNOWN_LABELS: ReadonlySet<string> = new Set([LABEL_INJECT, LABEL_ROLE, LABEL_ELECTION]);

export const DEFAULT_MOUNT_PATH = '/var/run/zkleader';

export type SidecarMode = 'native' | 'classic';

/** `"true"` / `"false"`, nothing else: a typo must not silently mean either. */
export function parseBooleanValue(raw: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new Error(`expected "true" or "false", got ${JSON.stringify(raw)}`);
}


/** The container runtime mounts its own filesystems here: a volume at or under them cannot work. */
const RUNTIME_MOUNTS = ['/proc', '/sys', '/dev'];

/** True when `path` is `dir` or inside it (both absolute, without trailing '/'). */
export function isSameOrUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/**
 * An absolute, normalised path that is not the root, contains no ':' (the kubelet
 * refuses those) and is not under /proc, /sys or /dev.
 */
export function parseMountPath(raw: string): string {
  if (!/^(\/[A-Za-z0-9._-]+)+$/.test(raw) || raw.split('/').some((part) => part === '.' || part === '..')) {
    throw new Error(`expected an absolute path such as "/var/run/zkleader" (letters, digits, '.', '_', '-', no '..'), got ${JSON.stringify(raw)}`);
  }
  const runtime = RUNTIME_MOUNTS.find((dir) => isSameOrUnder(raw, dir));
  if (runtime !== undefined) throw new Error(`${JSON.stringify(raw)} is ${raw === runtime ? '' : 'under '}${runtime}, which the container runtime mounts itself; choose a path such as "/var/run/zkleader"`);
  return raw;
}

/** A comma list of container names; spaces around names are allowed, empty entries are not. */
export function parseContainerList(raw: string): string[] {
  const names = raw.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) throw new Error(`expected a comma-separated list of container names, got ${JSON.stringify(raw)}`);
  return [...new Set(names)];
}

/**
 * At most this many names in zkleader.io/config. Each is a ZooKeeper watch and a
 * directory in the sidecar's memory-backed volume that may hold two versions of up to
 * 1 MiB during a switch (see buildVolumes), charged to the sidecar's memory: 16 bounds
 * that at 32 MiB. One config holds any number of keys, so more names are never needed.
 */
export const MAX_CONFIGS = 16;

const CONFIG_LIST_FORM =
  `NAME[,NAME...]: 1 to ${MAX_CONFIGS} distinct config names, each a ConfigMap name ` +
  `(a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 characters)`;

/**
 * zkleader.io/config: a comma list of config names (spaces around names allowed), in
 * the order given. Empty entries, bad names and duplicates are refused, as is a list
 * longer than MAX_CONFIGS; each name is checked with the sidecar's own DNS-1123 syntax.
 */
export function parseConfigList(raw: string): string[] {
  const names = raw.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) throw new Error(`expected ${CONFIG_LIST_FORM}, got ${JSON.stringify(raw)} (an empty name)`);
  if (names.length > MAX_CONFIGS) {
    throw new Error(`expected ${CONFIG_LIST_FORM}; got ${names.length} names (one config holds any number of keys: merge some)`);
  }
  const seen = new Set<string>();
  for (const name of names) {
    try {
      parseDnsSubdomain(name);
    } catch {
      throw new Error(`expected ${CONFIG_LIST_FORM}; ${JSON.stringify(name)} is not a ConfigMap name`);
    }
    if (seen.has(name)) throw new Error(`expected ${CONFIG_LIST_FORM}; ${JSON.stringify(name)} is named twice`);
    seen.add(name);
  }
  return names;
}

export function parseSidecarMode(raw: string): SidecarMode {
  if (raw === 'native' || raw === 'classic') return raw;
  throw new Error(`expected "native" or "classic", got ${JSON.stringify(raw)}`);
}
