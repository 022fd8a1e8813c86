import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ElectionSnapshot } from '../../../zookeeper/electionSnapshot.js';
import { LeaderFileWriter } from '../../../sidecar/leaderFile.js';

// Members without a cluster (sidecar --cluster not given): leader.json still says `"cluster": ""`.
const self = { pod: 'orders-1', ip: '10.0.1.7', uid: 'u-1', cluster: '' };
const other = { pod: 'orders-0', ip: '10.0.1.9', uid: 'u-0', cluster: '' };
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

  it('names each member\'s cluster: always a string, "" for a member without one', async () => {
    const east = { ...self, cluster: 'east' };
    const west = { ...other, cluster: 'west' };
    const legacy = { pod: 'orders-2', ip: null, uid: null, cluster: '' };
    const writer = new LeaderFileWriter(dir, 'shop/orders', east);
    await writer.write(snapshot({ leader: west, members: [west, east, legacy] }));
    const doc = JSON.parse(readFileSync(join(dir, 'leader.json'), 'utf8')) as Record<string, unknown>;
    expect(doc).toMatchObject({ self: { pod: 'orders-1', cluster: 'east' }, leader: { pod: 'orders-0', cluster: 'west' } });
    expect((doc.members as { cluster: string }[]).map((m) => m.cluster)).toEqual(['west', 'east', '']);
    // The leader file keeps its one line: the pod name alone (its cluster is in leader.json).
    expect(readFileSync(join(dir, 'leader'), 'utf8')).toBe('orders-0\n');
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

  it('a reader that never stops reading sees whole documents only', async () => {
    const writer = new LeaderFileWriter(dir, 'shop/orders', self);
    await writer.write(snapshot({}));
    // Another process reads both files in a tight loop while this one rewrites them; an
    // in-place write (truncate, then write) shows it empty or cut short within a few hundred reads.
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs');
         const dir = process.argv[1];
         let reads = 0, torn = 0, example = '';
         process.stdin.on('data', () => { process.stdout.write(JSON.stringify({ reads, torn, example })); process.exit(0); });
         (function loop() {
           for (let i = 0; i < 200; i++) {
             const text = fs.readFileSync(dir + '/leader.json', 'utf8');
             let doc;
             try { doc = JSON.parse(text); } catch { torn++; example = JSON.stringify(text.slice(0, 80)); continue; }
             if (typeof doc.isLeader === 'boolean') reads++; else torn++;
           }
           setImmediate(loop);
         })();`,
        dir,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    reader.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    for (let i = 0; i < 1500; i++) {
      const leads = i % 2 === 0;
      await writer.write(snapshot(leads ? { state: 'leader', isLeader: true, leader: self, epoch: String(i) } : { epoch: String(i), members: Array.from({ length: 1 + (i % 50) }, () => other) }));
    }
    reader.stdin.end('stop\n');
    await once(reader, 'exit');
    const result = JSON.parse(out) as { reads: number; torn: number; example: string };
    expect(result.reads).toBeGreaterThan(1000);
    expect({ torn: result.torn, example: result.example }).toEqual({ torn: 0, example: '' });
  }, 30_000);
});
