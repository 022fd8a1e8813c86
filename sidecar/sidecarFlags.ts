import { isIP } from 'node:net';
import { parseBoundedDuration } from '../cli/duration.js';
import { booleanFlag, defaultedString, optionalString, requiredString } from '../cli/flags.js';

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const hostName = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/;
const znodePath = /^(\/[^/\s]+)+$/;

export function parseDnsLabel(raw: string): string {
  if (raw.length > 63 || !dns1123Label.test(raw)) {
    throw new Error(`expected a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters), got ${JSON.stringify(raw)}`);
  }
  return raw;
}

function parsePodName(raw: string): string {
  if (raw.length > 253 || !dns1123Subdomain.test(raw)) throw new Error(`expected a pod name (a DNS-1123 subdomain), got ${JSON.stringify(raw)}`);
  return raw;
}

function parsePort(raw: string, min: number): number {
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= min && port <= 65535)) throw new Error(`expected a port from ${min} to 65535, got ${JSON.stringify(raw)}`);
  return port;
}

/** `host:port` with a host name, an IPv4 address or a bracketed IPv6 address. */
function parseHostPort(raw: string, minPort: number): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:[\]]+):([^:]*)$/.exec(raw);
  if (!m?.[1] || m[2] === undefined) throw new Error(`expected host:port, got ${JSON.stringify(raw)}`);
  const bracketed = m[1].startsWith('[');
  const host = bracketed ? m[1].slice(1, -1) : m[1];
  if (bracketed ? isIP(host) !== 6 : !(isIP(host) === 4 || hostName.test(host))) {
    throw new Error(`expected host:port with a host name or IP address, got ${JSON.stringify(raw)}`);
  }
  let port: number;
  try {
    port = parsePort(m[2], minPort);
  } catch (err) {
    throw new Error(`${(err as Error).message} in ${JSON.stringify(raw)}`, { cause: err });
  }
  return { host, port };
}

/** `host:port[,host:port...][/chroot]`, returned unchanged once valid. */
export function parseZooKeeperConnectString(raw: string): string {
  const slash = raw.indexOf('/');
  const hosts = slash < 0 ? raw : raw.slice(0, slash);
  const chroot = slash < 0 ? '' : raw.slice(slash);
  if (hosts === '') throw new Error(`expected host:port[,host:port...][/chroot], got ${JSON.stringify(raw)}`);
  for (const hp of hosts.split(',')) parseHostPort(hp, 1);
  if (chroot !== '' && !znodePath.test(chroot)) throw new Error(`expected a chroot such as /zk, got ${JSON.stringify(chroot)}`);
  return raw;
}

function parseZnodeRoot(raw: string): string {
  if (!znodePath.test(raw)) throw new Error(`expected an absolute ZooKeeper path such as /zkleader, got ${JSON.stringify(raw)}`);
  return raw;
}

function parseIp(raw: string): string {
  if (isIP(raw) === 0) throw new Error(`expected an IP address, got ${JSON.stringify(raw)}`);
  return raw;
}

export const sidecarFlags = {
  zookeeper: requiredString({ description: 'ZooKeeper connect string', valueName: 'H:P[,..][/chroot]', parse: parseZooKeeperConnectString }),
  election: requiredString({ description: 'election name (DNS-1123 label)', valueName: 'NAME', parse: parseDnsLabel }),
  namespace: requiredString({ description: "the pod's namespace", valueName: 'NS', env: ['POD_NAMESPACE'], parse: parseDnsLabel }),
  'pod-name': requiredString({ description: "the pod's name", valueName: 'P', env: ['POD_NAME'], parse: parsePodName }),
  'pod-uid': optionalString({ description: "the pod's uid", valueName: 'U', env: ['POD_UID'] }),
  'pod-ip': optionalString({ description: "the pod's IP address", valueName: 'IP', env: ['POD_IP'], parse: parseIp }),
  dir: defaultedString({ description: 'directory of the leader files (the shared volume)', valueName: 'D', default: '/var/run/zkleader' }),
  'session-timeout': defaultedString({
    description: 'ZooKeeper session timeout, 4s to 40s',
    valueName: 'T',
    default: '10s',
    parse: (raw) => parseBoundedDuration(raw, 4000, 40000),
  }),
  root: defaultedString({ description: 'ZooKeeper root of all elections', valueName: 'PATH', default: '/zkleader', parse: parseZnodeRoot }),
  'no-label': booleanFlag({ description: 'do not label the pod (no Kubernetes API access at all)' }),
  kubeconfig: optionalString({ description: 'kubeconfig file (default: the in-cluster configuration)', valueName: 'F' }),
  listen: defaultedString({
    description: 'HTTP address for /, /leader, /healthz, /readyz, /metrics',
    valueName: 'ADDR:PORT',
    default: '0.0.0.0:4040',
    parse: (raw) => parseHostPort(raw, 0),
  }),
};
