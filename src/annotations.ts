import { parseBoundedDuration } from '../cli/duration.js';

/**
 * Every `zkleader.io/*` key the injector reads or writes, with the parsing of
 * each input value. Parsers throw an Error whose message states the expected form;
 * the caller prefixes the annotation's name.
 */
export const ANNOTATION_INJECT = 'zkleader.io/inject';
export const ANNOTATION_ELECTION = 'zkleader.io/election';
export const ANNOTATION_ZOOKEEPER = 'zkleader.io/zookeeper';
export const ANNOTATION_SESSION_TIMEOUT = 'zkleader.io/session-timeout';
export const ANNOTATION_MOUNT_PATH = 'zkleader.io/mount-path';
export const ANNOTATION_CONTAINERS = 'zkleader.io/containers';
export const ANNOTATION_SIDECAR_MODE = 'zkleader.io/sidecar-mode';
export const ANNOTATION_LABEL = 'zkleader.io/label';
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
  ANNOTATION_STATUS,
  ANNOTATION_LEADER_EPOCH,
]);
export const KNOWN_LABELS: ReadonlySet<string> = new Set([LABEL_INJECT, LABEL_ROLE, LABEL_ELECTION]);

export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
export const MIN_SESSION_TIMEOUT_MS = 4_000;
export const MAX_SESSION_TIMEOUT_MS = 40_000;
export const DEFAULT_MOUNT_PATH = '/var/run/zkleader';

export type SidecarMode = 'native' | 'classic';

/** `"true"` / `"false"`, nothing else: a typo must not silently mean either. */
export function parseBooleanValue(raw: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new Error(`expected "true" or "false", got ${JSON.stringify(raw)}`);
}

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && dns1123Label.test(value);
}

export function parseElectionName(raw: string): string {
  if (!isDns1123Label(raw)) {
    throw new Error(`expected a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit), got ${JSON.stringify(raw)}`);
  }
  return raw;
}

const hostPattern = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)$/;
const chrootPattern = /^(\/[^/\s]+)+$/;

/** `host:port[,host:port...][/chroot]`, ports 1–65535. */
export function parseConnectString(raw: string): string {
  const expected = 'expected host:port[,host:port...][/chroot] with ports 1-65535';
  const slash = raw.indexOf('/');
  const hosts = slash === -1 ? raw : raw.slice(0, slash);
  const chroot = slash === -1 ? '' : raw.slice(slash);
  if (chroot !== '' && !chrootPattern.test(chroot)) throw new Error(`${expected}; the chroot ${JSON.stringify(chroot)} is not an absolute path`);
  if (hosts === '') throw new Error(`${expected}, got ${JSON.stringify(raw)}`);
  for (const server of hosts.split(',')) {
    const colon = server.lastIndexOf(':');
    const host = colon === -1 ? '' : server.slice(0, colon);
    const port = colon === -1 ? '' : server.slice(colon + 1);
    if (!hostPattern.test(host) || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      throw new Error(`${expected}; ${JSON.stringify(server)} is not host:port`);
    }
  }
  return raw;
}

export function parseSessionTimeout(raw: string): number {
  return parseBoundedDuration(raw, MIN_SESSION_TIMEOUT_MS, MAX_SESSION_TIMEOUT_MS);
}

/** An absolute, normalised path that is not the root and contains no ':' (the kubelet refuses those). */
export function parseMountPath(raw: string): string {
  if (!/^(\/[A-Za-z0-9._-]+)+$/.test(raw) || raw.split('/').some((part) => part === '.' || part === '..')) {
    throw new Error(`expected an absolute path such as "/var/run/zkleader" (letters, digits, '.', '_', '-', no '..'), got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** A comma list of container names; spaces around names are allowed, empty entries are not. */
export function parseContainerList(raw: string): string[] {
  const names = raw.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) throw new Error(`expected a comma-separated list of container names, got ${JSON.stringify(raw)}`);
  return [...new Set(names)];
}

export function parseSidecarMode(raw: string): SidecarMode {
  if (raw === 'native' || raw === 'classic') return raw;
  throw new Error(`expected "native" or "classic", got ${JSON.stringify(raw)}`);
}
