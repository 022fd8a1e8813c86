import { describe, expect, it } from '@jest/globals';
import { SessionLease } from '../../../zookeeper/sessionLease.js';

// T = 6000 ms: the lease is 4000 ms, a renewal anchors it once another came 1000 ms (T/6) after it.
const T = 6000;

describe('SessionLease', () => {
  it('has no lease before the first renewal of a session', () => {
    const lease = new SessionLease(() => T);
    lease.newSession(0);
    expect(lease.end()).toBeNull();
    expect(lease.valid(0)).toBe(false);
    expect(lease.renewedAt).toBeNull();
  });

  it('the first renewal is anchored by the session creation, not by itself', () => {
    const lease = new SessionLease(() => T);
    lease.newSession(1000);
    lease.renew(1500);
    // 1500 - 1000 < T/6: the anchor is the session's creation at 1000.
    expect(lease.end()).toBe(1000 + 4000);
    expect(lease.renewedAt).toBe(1500);
  });

  it('a renewal anchors the lease once a later one was sent at least T/6 after it', () => {
    const lease = new SessionLease(() => T);
    lease.newSession(0);
    lease.renew(2000);
    lease.renew(2500);
    expect(lease.end()).toBe(0 + 4000);
    lease.renew(3000);
    // 2000 <= 3000 - 1000: anchored at 2000.
    expect(lease.end()).toBe(2000 + 4000);
    expect(lease.valid(5999)).toBe(true);
    expect(lease.valid(6000)).toBe(false);
  });

  it('a new session drops the last one\'s renewals: no lease until it renews, then anchored by its own creation', () => {
    const lease = new SessionLease(() => T);
    lease.newSession(0);
    lease.renew(2000);
    lease.renew(3000);
    lease.newSession(10_000);
    expect(lease.end()).toBeNull();
    // renewedAt keeps the latest renewal of any session.
    expect(lease.renewedAt).toBe(3000);
    lease.renew(10_200);
    expect(lease.end()).toBe(10_000 + 4000);
  });

  it('follows a shorter session timeout granted later', () => {
    let timeout = T;
    const lease = new SessionLease(() => timeout);
    lease.newSession(0);
    lease.renew(100);
    expect(lease.durationMs).toBe(4000);
    timeout = 3000;
    expect(lease.durationMs).toBe(2000);
    expect(lease.end()).toBe(2000);
  });
});
