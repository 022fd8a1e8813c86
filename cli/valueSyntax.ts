import { isIP } from 'node:net';

// The syntax of values that both a flag of one command and an annotation read by another
// accept: the webhook must refuse at admission exactly what the sidecar would refuse at
// start, so both parse with these functions.

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const hostName = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/;
const znodePath = /^(\/[^/\s]+)+$/;

export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && dns1123Label.test(value);
}

export function parseDnsLabel(raw: string): string {
  if (!isDns1123Label(raw)) {
    throw new Error(
      `expected a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit), got ${JSON.stringify(raw)}`,
    );
  }
  return raw;
}

export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && dns1123Subdomain.test(value);
}

export function parseDnsSubdomain(raw: string): string {
  if (!isDns1123Subdomain(raw)) {
    throw new Error(`expected a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253 characters), got ${JSON.stringify(raw)}`);
  }
  return raw;
}

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port` with a host name, an IPv4 address or a bracketed IPv6 address; ports minPort–65535. */
export function parseHostPort(raw: string, minPort = 1): HostPort {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(raw);
  const port = Number(m?.[2]);
  if (!m?.[1] || !(port >= minPort && port <= 65535)) {
    throw new Error(`expected host:port with a port from ${minPort} to 65535, got ${JSON.stringify(raw)}`);
  }
  const bracketed = m[1].startsWith('[');
  const host = bracketed ? m[1].slice(1, -1) : m[1];
  if (bracketed ? isIP(host) !== 6 : !(isIP(host) === 4 || hostName.test(host))) {
    throw new Error(`expected host:port with a host name, an IPv4 address or a bracketed IPv6 address, got ${JSON.stringify(raw)}`);
  }
  return { host, port };
}

/**
 * A listen address, `[::]:PORT` (both address families, see cli/listen.ts) or `ADDR:PORT`
 * such as `0.0.0.0:PORT` (IPv4 only); port 0 lets the system choose (tests).
 */
export function parseListenAddress(raw: string): HostPort {
  try {
    return parseHostPort(raw, 0);
  } catch {
    throw new Error(`expected ADDR:PORT such as [::]:8443 (IPv4 and IPv6) or 0.0.0.0:8443 (IPv4 only), got ${JSON.stringify(raw)}`);
  }
}

/** ZooKeeper refuses paths with `.` or `..` components (PathUtils.validatePath: "relative paths not allowed"). */
function hasRelativeComponent(path: string): boolean {
  return path.split('/').some((part) => part === '.' || part === '..');
}

/** An absolute ZooKeeper path such as /zkleader. */
export function parseZnodePath(raw: string): string {
  if (!znodePath.test(raw)) throw new Error(`expected an absolute ZooKeeper path such as /zkleader, got ${JSON.stringify(raw)}`);
  if (hasRelativeComponent(raw)) throw new Error(`expected an absolute ZooKeeper path without "." or ".." components, got ${JSON.stringify(raw)}`);
  return raw;
}

/** `host:port[,host:port...][/chroot]`, returned unchanged once valid. */
export function parseZooKeeperConnectString(raw: string): string {
  const expected = 'expected host:port[,host:port...][/chroot] with ports 1-65535';
  const slash = raw.indexOf('/');
  const hosts = slash === -1 ? raw : raw.slice(0, slash);
  const chroot = slash === -1 ? '' : raw.slice(slash);
  if (hosts === '') throw new Error(`${expected}, got ${JSON.stringify(raw)}`);
  for (const server of hosts.split(',')) {
    try {
      parseHostPort(server, 1);
    } catch {
      throw new Error(`${expected}; ${JSON.stringify(server)} is not host:port`);
    }
  }
  if (chroot !== '' && !znodePath.test(chroot)) throw new Error(`${expected}; the chroot ${JSON.stringify(chroot)} is not an absolute path`);
  if (hasRelativeComponent(chroot)) throw new Error(`${expected}; the chroot ${JSON.stringify(chroot)} has a "." or ".." component, which ZooKeeper refuses`);
  return raw;
}

/**
 * When the app containers of a pod start (zkleader.io/start, the sidecar's --start):
 * `always` once the first election outcome is on disk; `leader` only once this member
 * leads (cold standby).
 */
export type StartPolicy = 'always' | 'leader';

export function parseStartPolicy(raw: string): StartPolicy {
  if (raw === 'always' || raw === 'leader') return raw;
  throw new Error(`expected "always" or "leader", got ${JSON.stringify(raw)}`);
}
