import { describe, expect, it } from '@jest/globals';
import { connectStringServers, leaseConditionWarnings, parseConf } from '../../../zookeeper/leaseCondition.js';

describe('the lease condition', () => {
  it('is met by deploy/zookeeper (tickTime 1 s, syncLimit 3) for the default 10 s timeout', () => {
    expect(leaseConditionWarnings({ tickTimeMs: 1000, syncLimit: 3 }, 10_000)).toEqual([]);
  });

  it('warns when the session timeout is below 3 × tickTime: the lease may outlive the session', () => {
    const [warning, ...rest] = leaseConditionWarnings({ tickTimeMs: 2000, syncLimit: 1 }, 5000);
    expect(rest).toEqual([]);
    expect(warning).toMatch(/session timeout 5000 ms is below 3 × tickTime \(6000 ms\)/);
  });

  it('warns when a cut-off server holds its members for half the session timeout or more', () => {
    // deploy/zookeeper before this release: tickTime 2 s × syncLimit 5 = the whole default timeout.
    const warnings = leaseConditionWarnings({ tickTimeMs: 2000, syncLimit: 5 }, 10_000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/syncLimit × tickTime \(10000 ms\) is not below half the session timeout \(10000 ms\)/);
  });

  it('has no quorum condition for a standalone server', () => {
    expect(leaseConditionWarnings({ tickTimeMs: 200, syncLimit: null }, 4000)).toEqual([]);
  });

  it('reads tickTime and syncLimit from a conf answer, null when conf is not allowed', () => {
    expect(parseConf('clientPort=2181\ntickTime=2000\nmaxSessionTimeout=40000\ninitLimit=10\nsyncLimit=5\n')).toEqual({ tickTimeMs: 2000, syncLimit: 5 });
    expect(parseConf('tickTime=200\nmaxSessionTimeout=4000\n')).toEqual({ tickTimeMs: 200, syncLimit: null });
    expect(parseConf('conf is not executed because it is not in the whitelist.\n')).toBeNull();
  });

  it('takes the servers of a connect string with or without a chroot', () => {
    expect(connectStringServers('zk-0.zk:2181,[::1]:2182/zkleader/a')).toEqual([
      { host: 'zk-0.zk', port: 2181 },
      { host: '::1', port: 2182 },
    ]);
  });
});
