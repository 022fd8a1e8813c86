import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ElectionSnapshot } from '../../../sidecar/electionSnapshot.js';
import { LeaderFileWriter } from '../../../sidecar/leaderFile.js';

const self = { pod: 'orders-1', ip: '10.0.1.7', uid: 'u-1' };
const other = { pod: 'orders-0', ip: '10.0.1.9', uid: 'u-0' };
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'leader-file-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function snapshot(over: Partial<ElectionSnapshot>): ElectionSnapshot {
  return {
    state: 'follower',
    isLeader: false,
    leader: other,
    epoch: '4294967301',
    members: [other, self],
    since: new Date('2026-11-22T10:00:00.000Z'),
    renewedAt: new Date('2026-11-22T10:00:03.000Z'),
    validUntil: new Date('2026-11-22T10:00:09.666Z'),
    ...over,
  };
}

describe('LeaderFileWriter', () => {
  it('writes leader and leader.json as DESIGN.md shows them', async () => {
    const writer = new LeaderFileWriter(join(dir, 'vol'), 'shop/orders', self);
    await writer.write(snapshot({}));
    expect(readFileSync(join(dir, 'vol', 'leader'), 'utf8')).toBe('orders-0\n');
    expect(JSON.parse(readFileSync(join(dir, 'vol', 'leader.json'), 'utf8'))).toEqual({
      election: 'shop/orders',
      state: 'follower',
      isLeader: false,
      self,
      leader: other,
      epoch: '4294967301',
      members: [other, self],
      since: '2026-11-22T10:00:00.000Z',
      renewedAt: '2026-11-22T10:00:03.000Z',
      validUntil: '2026-11-22T10:00:09.666Z',
    });
    expect(writer.written?.epoch).toBe('4294967301');
  });

  it('empties the leader file while unknown and leaves no temporary files', async () => {
    const writer = new LeaderFileWriter(dir, 'shop/orders', self);
    await writer.write(snapshot({}));
    await writer.write(snapshot({ state: 'unknown', leader: null, epoch: null }));
    expect(readFileSync(join(dir, 'leader'), 'utf8')).toBe('');
    expect(JSON.parse(readFileSync(join(dir, 'leader.json'), 'utf8'))).toMatchObject({ state: 'unknown', leader: null, epoch: null });
    expect(readdirSync(dir).sort()).toEqual(['leader', 'leader.json']);
  });

  it('writes the newest of many quick snapshots last', async () => {
    const writer = new LeaderFileWriter(dir, 'shop/orders', self);
    for (let i = 1; i <= 20; i++) void writer.write(snapshot({ epoch: String(i) }));
    await writer.flush();
    expect(JSON.parse(readFileSync(join(dir, 'leader.json'), 'utf8')).epoch).toBe('20');
  });

  it('reports a directory it cannot write', async () => {
    // A regular file where the directory should be.
    writeFileSync(join(dir, 'not-a-dir'), '');
    const writer = new LeaderFileWriter(join(dir, 'not-a-dir', 'vol'), 'shop/orders', self);
    await writer.write(snapshot({}));
    expect(writer.written).toBeNull();
    expect(writer.error?.message).toMatch(/not-a-dir/);
  });
});
