import { describe, expect, it } from '@jest/globals';
import { UsageError, parseFlags } from '../../../cli/flags.js';
import { sidecarFlags } from '../../../sidecar/sidecarFlags.js';

const required = ['--zookeeper', 'zk:2181', '--election', 'orders', '--namespace', 'shop', '--pod-name', 'orders-0'];

describe('sidecar flags', () => {
  it('applies the contract defaults', () => {
    const { flags } = parseFlags(sidecarFlags, required, {});
    expect(flags).toEqual({
      zookeeper: 'zk:2181',
      election: 'orders',
      namespace: 'shop',
      'pod-name': 'orders-0',
      'pod-uid': undefined,
      'pod-ip': undefined,
      dir: '/var/run/zkleader',
      'session-timeout': 10000,
      root: '/zkleader',
      'no-label': false,
      kubeconfig: undefined,
      listen: { host: '::', port: 4040 },
      configs: undefined,
      'credential-file': undefined,
      'label-check': 30000,
      cluster: undefined,
      start: 'always',
    });
  });

  it('takes --configs as a list of config names, and refuses a bad or repeated one naming the flag', () => {
    expect(parseFlags(sidecarFlags, [...required, '--configs', 'app, feature-flags'], {}).flags.configs).toEqual(['app', 'feature-flags']);
    expect(() => parseFlags(sidecarFlags, [...required, '--configs', 'app,app'], {})).toThrow('--configs: config app is named twice');
    expect(() => parseFlags(sidecarFlags, [...required, '--configs', 'Bad_Name'], {})).toThrow(/--configs: config name "Bad_Name" must be a ConfigMap name/);
    expect(() => parseFlags(sidecarFlags, [...required, '--label-check', '10m1s'], {})).toThrow(/--label-check/);
  });

  it('takes --cluster as a DNS-1123 label; empty is no cluster, as from the webhook without the setting', () => {
    expect(parseFlags(sidecarFlags, [...required, '--cluster', 'east'], {}).flags.cluster).toBe('east');
    expect(parseFlags(sidecarFlags, required, { ZKLEADER_CLUSTER: 'west' }).flags.cluster).toBe('west');
    // An empty variable counts as unset: no cluster either way.
    expect(parseFlags(sidecarFlags, required, { ZKLEADER_CLUSTER: '' }).flags.cluster).toBeUndefined();
    expect(parseFlags(sidecarFlags, [...required, '--cluster', ''], {}).flags.cluster ?? '').toBe('');
    expect(() => parseFlags(sidecarFlags, [...required, '--cluster', 'East_1'], {})).toThrow(UsageError);
    expect(() => parseFlags(sidecarFlags, [...required, '--cluster', 'East_1'], {})).toThrow('--cluster: expected a DNS-1123 label');
    expect(() => parseFlags(sidecarFlags, required, { ZKLEADER_CLUSTER: 'a'.repeat(64) })).toThrow('--cluster (from ZKLEADER_CLUSTER): expected a DNS-1123 label');
  });

  it('reads the environment the webhook sets (downward API and ZKLEADER_*)', () => {
    const { flags } = parseFlags(sidecarFlags, [], {
      POD_NAME: 'orders-1',
      POD_NAMESPACE: 'shop',
      POD_UID: 'u-1',
      POD_IP: '10.0.1.7',
      ZKLEADER_ZOOKEEPER: 'zk-0.zk:2181,zk-1.zk:2181/chroot',
      ZKLEADER_ELECTION: 'orders',
      ZKLEADER_SESSION_TIMEOUT: '4s',
      ZKLEADER_DIR: '/var/run/zkleader',
      ZKLEADER_LISTEN: '[::1]:4040',
      ZKLEADER_NO_LABEL: 'true',
    });
    expect(flags).toMatchObject({
      'pod-name': 'orders-1',
      namespace: 'shop',
      'pod-uid': 'u-1',
      'pod-ip': '10.0.1.7',
      zookeeper: 'zk-0.zk:2181,zk-1.zk:2181/chroot',
      'session-timeout': 4000,
      listen: { host: '::1', port: 4040 },
      'no-label': true,
    });
  });

  it.each([
    [['--election', 'Orders'], '--election: expected a DNS-1123 label'],
    [['--election', 'a'.repeat(64)], '--election: expected a DNS-1123 label'],
    [['--namespace', 'shop_1'], '--namespace: expected a DNS-1123 label'],
    [['--zookeeper', 'zk:0'], '--zookeeper: expected host:port[,host:port...][/chroot] with ports 1-65535; "zk:0" is not host:port'],
    [['--zookeeper', 'zk:70000'], '--zookeeper: expected host:port[,host:port...][/chroot] with ports 1-65535; "zk:70000" is not host:port'],
    [['--zookeeper', 'zk'], '--zookeeper: expected host:port[,host:port...][/chroot] with ports 1-65535; "zk" is not host:port'],
    [['--zookeeper', 'zk:2181/'], '--zookeeper: expected host:port[,host:port...][/chroot] with ports 1-65535; the chroot "/" is not an absolute path'],
    [['--session-timeout', '3s'], '--session-timeout: expected a duration from 4s to 40s, got "3s"'],
    [['--session-timeout', '41s'], '--session-timeout: expected a duration from 4s to 40s, got "41s"'],
    [['--pod-ip', '10.0.0'], '--pod-ip: expected an IP address, got "10.0.0"'],
    [['--root', 'zkleader'], '--root: expected an absolute ZooKeeper path such as /zkleader, got "zkleader"'],
    [['--listen', '0.0.0.0'], '--listen: expected ADDR:PORT such as [::]:8443 (IPv4 and IPv6) or 0.0.0.0:8443 (IPv4 only), got "0.0.0.0"'],
    [['--pod-name', 'Bad_Name'], '--pod-name: expected a DNS-1123 subdomain (lower-case letters, digits, \'-\' and \'.\', at most 253 characters), got "Bad_Name"'],
  ])('refuses %j with a message naming the flag', (override, message) => {
    const argv = [...required, ...override];
    expect(() => parseFlags(sidecarFlags, argv, {})).toThrow(UsageError);
    expect(() => parseFlags(sidecarFlags, argv, {})).toThrow(message);
  });

  it('names the environment variable of a bad value', () => {
    expect(() => parseFlags(sidecarFlags, required.slice(0, 6), { POD_NAME: 'x', ZKLEADER_SESSION_TIMEOUT: '1s' })).toThrow(
      '--session-timeout (from ZKLEADER_SESSION_TIMEOUT): expected a duration from 4s to 40s, got "1s"',
    );
    expect(() => parseFlags(sidecarFlags, required.slice(0, 4), { POD_NAMESPACE: 'Shop', POD_NAME: 'x' })).toThrow('--namespace (from POD_NAMESPACE)');
  });
});
