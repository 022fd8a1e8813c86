import { describe, expect, it } from '@jest/globals';
import { lockNodePrefix, lockOrder, nodesToWatch, type LockNode } from '../../../zookeeper/lock.js';

const uuids = ['0b6f3c1e-7d8a-4c2b-9e1f-1a2b3c4d5e6f', 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d', 'ffffffff-0000-4000-8000-000000000000', '12345678-9abc-4def-8123-456789abcdef'];

function node(uuid: string, sequence: number): string {
  return `${lockNodePrefix(uuid)}${String(sequence).padStart(10, '0')}`;
}

/** A queue of `n` waiters with sequences 0..n-1 (uuids cycling). */
function queue(n: number): LockNode[] {
  return lockOrder(Array.from({ length: n }, (_, i) => node(uuids[i % uuids.length] as string, i)));
}

const names = (nodes: readonly LockNode[]) => nodes.map((n) => n.sequence);

describe('lockOrder', () => {
  it('orders waiters by their sequence, not by name or by the order ZooKeeper lists them', () => {
    // The uuid sorts the names differently from the sequence.
    const children = [node(uuids[2] as string, 7), node(uuids[0] as string, 12), node(uuids[1] as string, 3), node(uuids[3] as string, 10)];
    expect(lockOrder(children)).toEqual([
      { name: children[2], uuid: uuids[1], sequence: 3 },
      { name: children[0], uuid: uuids[2], sequence: 7 },
      { name: children[3], uuid: uuids[3], sequence: 10 },
      { name: children[1], uuid: uuids[0], sequence: 12 },
    ]);
  });

  it('compares sequences as numbers across the whole 10-digit range', () => {
    const children = [node(uuids[0] as string, 2_147_483_647), node(uuids[1] as string, 999_999_999), node(uuids[2] as string, 1_000_000_000), node(uuids[3] as string, 0)];
    expect(names(lockOrder(children))).toEqual([0, 999_999_999, 1_000_000_000, 2_147_483_647]);
  });

  it('ignores children of other names', () => {
    const ours = node(uuids[0] as string, 5);
    const foreign = [
      'leader',
      'lock-0000000001',
      `${uuids[1]}-lock-000000001`, // 9 digits
      `${uuids[1]}-lock-00000000012`, // 11 digits
      `${uuids[1]}-member-0000000002`,
      `${(uuids[1] as string).toUpperCase()}-lock-0000000003`,
      `x${uuids[1]}-lock-0000000004`,
      `${uuids[1]}-lock-0000000004-extra`,
      'not-a-uuid-at-all-but-36-chars-long-lock-0000000000',
      '',
    ];
    expect(lockOrder([...foreign, ours])).toEqual([{ name: ours, uuid: uuids[0], sequence: 5 }]);
    expect(lockOrder(foreign)).toEqual([]);
    expect(lockOrder([])).toEqual([]);
  });

  it('uses the prefix the recipe creates nodes with', () => {
    expect(lockNodePrefix(uuids[0] as string)).toBe(`${uuids[0]}-lock-`);
    // ZooKeeper appends a 10-digit sequence to the prefix.
    expect(lockOrder([`${lockNodePrefix(uuids[0] as string)}0000000042`])).toEqual([{ name: `${uuids[0]}-lock-0000000042`, uuid: uuids[0], sequence: 42 }]);
  });
});

describe('nodesToWatch', () => {
  it('holders 1: the first holds and watches nothing; every other watches only the one just ahead', () => {
    const order = queue(5);
    expect(nodesToWatch(order, 0, 1)).toEqual([]);
    for (let i = 1; i < 5; i++) expect(nodesToWatch(order, i, 1)).toEqual([order[i - 1]]);
  });

  it('holders 3: the first three hold and watch nothing; every other watches the three just ahead', () => {
    const order = queue(7);
    for (let i = 0; i < 3; i++) expect(nodesToWatch(order, i, 3)).toEqual([]);
    expect(names(nodesToWatch(order, 3, 3))).toEqual([0, 1, 2]);
    expect(names(nodesToWatch(order, 4, 3))).toEqual([1, 2, 3]);
    expect(names(nodesToWatch(order, 6, 3))).toEqual([3, 4, 5]);
  });

  it('with gaps in the sequence (waiters gone) it watches by position, never more than `holders`', () => {
    const order = lockOrder([node(uuids[0] as string, 2), node(uuids[1] as string, 9), node(uuids[2] as string, 40), node(uuids[3] as string, 41), node(uuids[0] as string, 77)]);
    expect(names(nodesToWatch(order, 4, 2))).toEqual([40, 41]);
    expect(names(nodesToWatch(order, 2, 2))).toEqual([2, 9]);
    for (const holders of [1, 2, 3, 4, 5, 6]) {
      for (let i = 0; i < order.length; i++) {
        const watched = nodesToWatch(order, i, holders);
        expect(watched.length).toBe(i < holders ? 0 : holders);
        // Only nodes ahead of it.
        for (const w of watched) expect(order.indexOf(w)).toBeLessThan(i);
      }
    }
  });

  it('does not change the order it is given', () => {
    const order = queue(4);
    const copy = [...order];
    nodesToWatch(order, 3, 2);
    expect(order).toEqual(copy);
  });
});
