import { describe, expect, it } from '@jest/globals';
import { parseSessionTimeout } from '../../../cli/duration.js';
import { isDns1123Label, parseDnsLabel, parseDnsSubdomain, parseHostPort, parseListenAddress, parseZnodePath, parseZooKeeperConnectString } from '../../../cli/valueSyntax.js';

// These parsers serve both the webhook (annotations) and the sidecar (flags): a value the
// webhook admits must be one the sidecar starts with.

describe('parseZooKeeperConnectString', () => {
  it.each(['127.0.0.1:2181', 'a:1,b:2,c:65535', 'zk.default.svc:2181/apps/zkleader', '[::1]:2181', 'zk-0.zk:2181,zk-1.zk:2181/zkleader'])('accepts %s', (raw) => {
    expect(parseZooKeeperConnectString(raw)).toBe(raw);
  });

  it.each(['', 'zk', 'zk:0', 'zk:65536', ':2181', 'a:b', 'zk:2181,', 'zk:2181/', 'zk:2181//x', '/chroot', 'zk:2181 ', '[zk]:2181', '-zk:2181'])('refuses %j', (raw) => {
    expect(() => parseZooKeeperConnectString(raw)).toThrow('expected host:port[,host:port...][/chroot] with ports 1-65535');
  });

  it('names the server or chroot at fault', () => {
    expect(() => parseZooKeeperConnectString('a:1,b')).toThrow('"b" is not host:port');
    expect(() => parseZooKeeperConnectString('a:1/x//y')).toThrow('the chroot "/x//y" is not an absolute path');
  });

  it.each(['a:1/..', 'a:1/x/./y', 'a:1/x/../y', 'a:1/.'])('refuses the chroot of %j, which ZooKeeper would refuse later', (raw) => {
    expect(() => parseZooKeeperConnectString(raw)).toThrow('has a "." or ".." component, which ZooKeeper refuses');
  });

  it('accepts dots inside a chroot component', () => {
    expect(parseZooKeeperConnectString('a:1/.hidden/v1.2/..x')).toBe('a:1/.hidden/v1.2/..x');
  });
});

describe('parseHostPort and parseListenAddress', () => {
  it('reads IPv4, names and bracketed IPv6', () => {
    expect(parseHostPort('zk.local:2181')).toEqual({ host: 'zk.local', port: 2181 });
    expect(parseListenAddress('0.0.0.0:8443')).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(parseListenAddress('[::]:0')).toEqual({ host: '::', port: 0 });
  });

  it('refuses what cannot be listened on', () => {
    expect(() => parseListenAddress('8443')).toThrow('expected ADDR:PORT such as [::]:8443 (IPv4 and IPv6) or 0.0.0.0:8443 (IPv4 only), got "8443"');
    expect(() => parseListenAddress('a:70000')).toThrow('expected ADDR:PORT');
    expect(() => parseListenAddress('[not-ipv6]:80')).toThrow('expected ADDR:PORT');
    expect(() => parseHostPort('a:0')).toThrow('expected host:port with a port from 1 to 65535, got "a:0"');
  });
});

describe('DNS names', () => {
  it.each(['orders', 'a', 'a-1', 'x'.repeat(63)])('%s is a DNS-1123 label', (raw) => {
    expect(isDns1123Label(raw)).toBe(true);
    expect(parseDnsLabel(raw)).toBe(raw);
  });

  it.each(['', 'Orders', '-a', 'a-', 'a.b', 'x'.repeat(64), 'a_b'])('%j is not', (raw) => {
    expect(isDns1123Label(raw)).toBe(false);
    expect(() => parseDnsLabel(raw)).toThrow('expected a DNS-1123 label');
  });

  it('accepts pod names as DNS-1123 subdomains', () => {
    expect(parseDnsSubdomain('orders-7c9f.abcde')).toBe('orders-7c9f.abcde');
    expect(() => parseDnsSubdomain('Orders')).toThrow('expected a DNS-1123 subdomain');
    expect(() => parseDnsSubdomain('a'.repeat(254))).toThrow('at most 253 characters');
  });
});

describe('parseZnodePath', () => {
  it('accepts absolute paths and refuses the rest', () => {
    expect(parseZnodePath('/zkleader/prod')).toBe('/zkleader/prod');
    for (const bad of ['zkleader', '/', '/a//b', '/a b', '/a/..', '/./a']) expect(() => parseZnodePath(bad)).toThrow('expected an absolute ZooKeeper path');
  });
});

describe('parseSessionTimeout', () => {
  it('takes 4s to 40s', () => {
    expect(parseSessionTimeout('4s')).toBe(4000);
    expect(parseSessionTimeout('40000ms')).toBe(40000);
    expect(() => parseSessionTimeout('3999ms')).toThrow('expected a duration from 4s to 40s, got "3999ms"');
    expect(() => parseSessionTimeout('41s')).toThrow('expected a duration from 4s to 40s');
  });
});
