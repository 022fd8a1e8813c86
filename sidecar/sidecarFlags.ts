import { isIP } from 'node:net';
import { formatDuration, parseBoundedDuration, DEFAULT_SESSION_TIMEOUT_MS, MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS, parseSessionTimeout } from '../cli/duration.js';
import { booleanFlag, defaultedString, optionalString, requiredString } from '../cli/flags.js';
import { parseConfigName } from '../zookeeper/configStore.js';
import { parseDnsLabel, parseDnsSubdomain, parseListenAddress, parseStartPolicy, parseZnodePath, parseZooKeeperConnectString } from '../cli/valueSyntax.js';

function parseConfigNames(raw: string): string[] {
  const names = raw.split(',').map((n) => n.trim());
  const seen = new Set<string>();
  for (const name of names) {
    parseConfigName(name);
    if (seen.has(name)) throw new Error(`config ${name} is named twice`);
    seen.add(name);
  }
  return names;
}

function parseIp(raw: string): string {
  if (isIP(raw) === 0) throw new Error(`expected an IP address, got ${JSON.stringify(raw)}`);
  return raw;
}

export const sidecarFlags = {
  zookeeper: requiredString({ description: 'ZooKeeper connect string', valueName: 'H:P[,..][/chroot]', parse: parseZooKeeperConnectString }),
  election: optionalString({ description: 'election name (DNS-1123 label); without it (and with --configs) the pod only follows configs', valueName: 'NAME', parse: parseDnsLabel }),
  configs: optionalString({
    description: 'configs to follow and write under <dir>/config/ (comma list of names; see zkleader config)',
    valueName: 'NAME[,..]',
    parse: parseConfigNames,
  }),
  cluster: optionalString({
    description: "this pod's cluster (DNS-1123 label), for one election across clusters that share the ensemble; labels and stale-leader demotion stay within it",
    valueName: 'NAME',
    // Empty (the webhook's default setting) is no cluster, as when the flag is absent.
    parse: (raw) => (raw === '' ? '' : parseDnsLabel(raw)),
  }),
  namespace: requiredString({ description: "the pod's namespace", valueName: 'NS', env: ['POD_NAMESPACE'], parse: parseDnsLabel }),
  'pod-name': requiredString({ description: "the pod's name", valueName: 'P', env: ['POD_NAME'], parse: parseDnsSubdomain }),
  'pod-uid': optionalString({ description: "the pod's uid", valueName: 'U', env: ['POD_UID'] }),
  'pod-ip': optionalString({ description: "the pod's IP address", valueName: 'IP', env: ['POD_IP'], parse: parseIp }),
  dir: defaultedString({ description: 'directory of the leader files (the shared volume)', valueName: 'D', default: '/var/run/zkleader' }),
  'session-timeout': defaultedString({
    description: `ZooKeeper session timeout, ${formatDuration(MIN_SESSION_TIMEOUT_MS)} to ${formatDuration(MAX_SESSION_TIMEOUT_MS)}`,
    valueName: 'T',
    default: formatDuration(DEFAULT_SESSION_TIMEOUT_MS),
    parse: parseSessionTimeout,
  }),
  root: defaultedString({ description: 'ZooKeeper root of all elections', valueName: 'PATH', default: '/zkleader', parse: parseZnodePath }),
  'no-label': booleanFlag({ description: 'do not label the pod (no Kubernetes API access at all)' }),
  'credential-file': optionalString({
    description: "the namespace's ZooKeeper credential (user:password; the Secret zkleader-zookeeper): authenticate with it and create nodes only it may change",
    valueName: 'F',
  }),
  'label-check': defaultedString({
    description: 'how often the labels are checked against what the sidecar applied (another pod may change them), 1s to 10m',
    valueName: 'T',
    default: '30s',
    parse: (raw) => parseBoundedDuration(raw, 1000, 600_000),
  }),
  start: defaultedString({
    description: 'when the app containers may start (the startupProbe asks /startz): always, or leader (cold standby: once this member leads; a started leader that loses leadership deletes its own pod)',
    valueName: 'always|leader',
    default: 'always',
    parse: parseStartPolicy,
  }),
  kubeconfig: optionalString({ description: 'kubeconfig file (default: the in-cluster configuration)', valueName: 'F' }),
  listen: defaultedString({
    description: 'HTTP address for /, /leader, /healthz, /readyz, /metrics; [::] is every address of both families (0.0.0.0 where IPv6 is unavailable)',
    valueName: 'ADDR:PORT',
    default: '[::]:4040',
    parse: parseListenAddress,
  }),
};
