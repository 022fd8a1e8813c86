import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { V1Pod, V1PodList } from '@kubernetes/client-node';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LeaderDocument } from '../../../sidecar/leaderFile.js';
import {
  checkHistory,
  epochIsCzxid,
  epochsGrow,
  expectSafeHistory,
  filesReadable,
  formatViolations,
  leaderEpochs,
  leaderLabelEpochsGrow,
  LeaderHistoryRecorder,
  leaseBeforeSuccessor,
  noTwoLeaderLabels,
  noTwoValidLeaders,
  parseLeaderDocument,
  type FileObservation,
  type LabelObservation,
  type LeaderHistory,
  podsInEmulator,
  podsThroughApi,
} from '../../support/leaderHistory.js';

// Hand-made histories: every checker must flag a crafted violation and pass a crafted good
// history. Times are ms after T0; the 4 s session timeout of the tests gives 2666 ms leases.
const T0 = Date.parse('2026-11-22T10:00:00.000Z');
const iso = (ms: number): string => new Date(T0 + ms).toISOString();
const LEASE = 2666;

function member(pod: string): { pod: string; ip: string; uid: string; cluster: string } {
  return { pod, ip: '127.0.0.1', uid: `uid-${pod}`, cluster: '' };
}

function leaderDoc(pod: string, epoch: string, since: number, renewedAt: number, validUntil = renewedAt + LEASE): LeaderDocument {
  return {
    election: 'test/e',
    state: 'leader',
    isLeader: true,
    self: member(pod),
    leader: member(pod),
    epoch,
    members: [member(pod)],
    since: iso(since),
    renewedAt: iso(renewedAt),
    validUntil: iso(validUntil),
  };
}

function followerDoc(pod: string, leader: string | null, epoch: string | null, since: number, renewedAt = since): LeaderDocument {
  return {
    election: 'test/e',
    state: 'follower',
    isLeader: false,
    self: member(pod),
    leader: leader === null ? null : member(leader),
    epoch,
    members: [member(pod)],
    since: iso(since),
    renewedAt: iso(renewedAt),
    validUntil: iso(renewedAt + LEASE),
  };
}

function unknownDoc(pod: string, since: number): LeaderDocument {
  return { ...followerDoc(pod, null, null, since), state: 'unknown' };
}

function file(at: number, pod: string, doc: LeaderDocument | null, extra: Partial<Pick<FileObservation, 'error' | 'gone'>> = {}): FileObservation {
  return { kind: 'file', at: T0 + at, member: pod, doc, ...extra };
}

function label(at: number, pod: string, role: string | null, epoch: string | null = null): LabelObservation {
  return { kind: 'label', at: T0 + at, pod, role, epoch };
}

function history(files: FileObservation[], labels: LabelObservation[] = []): LeaderHistory {
  return { files: [...files].sort((a, b) => a.at - b.at), labels };
}

/** a-0 leads with epoch 100 from 0; b-1 follows. */
const start = [file(0, 'a-0', leaderDoc('a-0', '100', 0, 0)), file(0, 'b-1', followerDoc('b-1', 'a-0', '100', 0))];

describe('parseLeaderDocument', () => {
  it('accepts a document of DESIGN.md', () => {
    const doc = leaderDoc('a-0', '4294967301', 0, 3000);
    expect(parseLeaderDocument(JSON.stringify(doc, null, 2))).toEqual(doc);
  });

  it('refuses a half-written file, naming the JSON error', () => {
    const text = JSON.stringify(leaderDoc('a-0', '1', 0, 0), null, 2);
    expect(() => parseLeaderDocument(text.slice(0, text.length / 2))).toThrow(/^not JSON/);
    expect(() => parseLeaderDocument('')).toThrow(/^not JSON/);
  });

  it('refuses documents an app could not honour: leader without lease or epoch, isLeader against state', () => {
    const doc = leaderDoc('a-0', '1', 0, 0);
    expect(() => parseLeaderDocument(JSON.stringify({ ...doc, validUntil: null }))).toThrow('a leader document without validUntil');
    expect(() => parseLeaderDocument(JSON.stringify({ ...doc, epoch: null }))).toThrow('a leader document without an epoch');
    expect(() => parseLeaderDocument(JSON.stringify({ ...doc, state: 'follower' }))).toThrow('isLeader true contradicts state follower');
    expect(() => parseLeaderDocument(JSON.stringify({ ...doc, epoch: 4294967301 }))).toThrow('epoch is neither null nor a decimal string');
    expect(() => parseLeaderDocument(JSON.stringify({ ...doc, leader: member('b-1') }))).toThrow('does not name itself');
  });
});

describe('filesReadable', () => {
  it('flags a half-written or vanished file as a failure, with the observation before it', () => {
    const h = history([...start, file(50, 'a-0', null, { error: 'not JSON (Unexpected end of JSON input): "{\\"elec"' })]);
    const v = filesReadable(h);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toContain("a-0's leader.json could not be read");
    expect(v[0]?.window.map((o) => o.at - T0)).toEqual([0, 50]);
  });

  it('passes readable files, a member not written yet, and a removed volume', () => {
    const h = history([file(0, 'c-2', null), ...start, file(900, 'a-0', null, { gone: true })]);
    expect(filesReadable(h)).toEqual([]);
  });
});

describe('noTwoValidLeaders', () => {
  it('passes a graceful handover: the old leader says follower before the successor leads', () => {
    const h = history([...start, file(100, 'a-0', followerDoc('a-0', null, null, 95)), file(120, 'b-1', leaderDoc('b-1', '200', 110, 110))]);
    expect(noTwoValidLeaders(h)).toEqual([]);
  });

  it('passes a crashed leader whose file keeps isLeader but whose validUntil passed before the successor was seen', () => {
    const h = history([...start, file(4100, 'b-1', leaderDoc('b-1', '200', 4090, 4090))]);
    expect(noTwoValidLeaders(h)).toEqual([]);
  });

  it('passes a stale leader file that had already expired when it was first seen', () => {
    const h = history([file(5000, 'a-0', leaderDoc('a-0', '100', 0, 0)), file(5000, 'b-1', leaderDoc('b-1', '200', 4090, 4090))]);
    expect(noTwoValidLeaders(h)).toEqual([]);
  });

  it('flags a paused leader, resumed, that still shows a valid lease when the successor leads', () => {
    // Frozen at 0 with a lease to 2666; b-1 leads from 4090; on resume a-0 renews before learning of the expiry.
    const h = history([...start, file(4100, 'b-1', leaderDoc('b-1', '200', 4090, 4090)), file(4300, 'a-0', leaderDoc('a-0', '100', 0, 4250))]);
    const v = noTwoValidLeaders(h);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toMatch(/^two valid leaders at once from 10:00:04\.300 to 10:00:06\.756 \(2456 ms\): b-1 \(epoch 200.*\) and a-0 \(epoch 100/);
    expect(v[0]?.window.map((o) => [o.at - T0, o.kind === 'file' && o.member])).toEqual([
      [4100, 'b-1'],
      [4300, 'a-0'],
    ]);
  });

  it('flags a leader whose lease outlives its file being seen, when another member leads inside the lease', () => {
    // a-0 published a lease to 6000 and froze; b-1 is seen leading at 4100.
    const h = history([file(0, 'a-0', leaderDoc('a-0', '100', 0, 0, 6000)), file(4100, 'b-1', leaderDoc('b-1', '200', 4090, 4090))]);
    const v = noTwoValidLeaders(h);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toContain('from 10:00:04.100 to 10:00:06.000 (1900 ms)');
  });

  it('flags two leaders in one sample, and reports one violation per pair of members', () => {
    const h = history([...start, file(100, 'b-1', leaderDoc('b-1', '200', 90, 90)), file(600, 'b-1', leaderDoc('b-1', '200', 90, 590))]);
    const v = noTwoValidLeaders(h);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toContain('1 more overlapping claim(s) of the same two members');
  });

  it('ends a claim at the member\'s next document, not at an error or a removed volume', () => {
    const error = file(100, 'a-0', null, { error: 'not JSON' });
    const gone = file(200, 'a-0', null, { gone: true });
    const h = history([...start, error, gone, file(1000, 'b-1', leaderDoc('b-1', '200', 990, 990))]);
    expect(noTwoValidLeaders(h)).toHaveLength(1);
  });
});

describe('leaseBeforeSuccessor', () => {
  it('passes a crashed leader whose file keeps isLeader but whose validUntil passed before the successor\'s since', () => {
    const h = history([...start, file(1000, 'a-0', leaderDoc('a-0', '100', 0, 1000)), file(4800, 'b-1', leaderDoc('b-1', '200', 4700, 4700))]);
    expect(leaseBeforeSuccessor(h)).toEqual([]);
  });

  it('passes a graceful handover: the leader let go (its follower document\'s since) before the successor began', () => {
    const h = history([...start, file(105, 'a-0', followerDoc('a-0', null, null, 100, 0)), file(115, 'b-1', leaderDoc('b-1', '200', 110, 110))]);
    expect(leaseBeforeSuccessor(h)).toEqual([]);
  });

  it('flags a successor that began while the last published lease still ran (the last validUntil of that epoch counts)', () => {
    // Renewed at 1000 (valid to 3666); b-1 leads from 3000.
    const h = history([...start, file(1000, 'a-0', leaderDoc('a-0', '100', 0, 1000)), file(3010, 'b-1', leaderDoc('b-1', '200', 3000, 3000))]);
    const v = leaseBeforeSuccessor(h);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toBe('the lease of a-0 (epoch 100) was valid until 10:00:03.666, 666 ms into the leadership of b-1 (epoch 200) since 10:00:03.000');
    expect(v[0]?.window.map((o) => o.at - T0)).toEqual([1000, 3010]);
  });

  it('flags a leader that let go only after its successor began', () => {
    const h = history([...start, file(150, 'b-1', leaderDoc('b-1', '200', 100, 100)), file(160, 'a-0', unknownDoc('a-0', 130))]);
    const v = leaseBeforeSuccessor(h);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toContain('let go only at 10:00:00.130, 30 ms into the leadership of b-1');
  });

  it('treats a leader that stepped down and resumed with the same epoch as one leadership', () => {
    const h = history([
      ...start,
      file(500, 'a-0', unknownDoc('a-0', 500)),
      file(520, 'a-0', leaderDoc('a-0', '100', 520, 520)),
      file(9000, 'b-1', leaderDoc('b-1', '200', 8000, 8000)),
    ]);
    expect(leaseBeforeSuccessor(h)).toEqual([]);
    expect(leaderEpochs(h)).toEqual(['100', '200']);
  });
});

describe('epochsGrow', () => {
  it('passes epochs that grow, compared as integers beyond 2^53', () => {
    const h = history([
      file(0, 'a-0', leaderDoc('a-0', '9', 0, 0)),
      file(5000, 'b-1', leaderDoc('b-1', '10', 5000, 5000)),
      file(10000, 'a-0', leaderDoc('a-0', '9007199254740993', 10000, 10000)),
      file(15000, 'b-1', leaderDoc('b-1', '9007199254740995', 15000, 15000)),
    ]);
    expect(epochsGrow(h)).toEqual([]);
    expect(leaderEpochs(h)).toEqual(['9', '10', '9007199254740993', '9007199254740995']);
  });

  it('flags an epoch going down (as integers: 9 after 10)', () => {
    const h = history([file(0, 'a-0', leaderDoc('a-0', '10', 0, 0)), file(5000, 'b-1', leaderDoc('b-1', '9', 5000, 5000))]);
    const v = epochsGrow(h);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toBe('the epoch went down: a-0 led with 10, then b-1 with 9 (since 10:00:05.000)');
  });

  it('flags a 64-bit epoch going down by one, which doubles cannot tell apart', () => {
    const h = history([file(0, 'a-0', leaderDoc('a-0', '9007199254740993', 0, 0)), file(5000, 'b-1', leaderDoc('b-1', '9007199254740992', 5000, 5000))]);
    expect(epochsGrow(h)).toHaveLength(1);
  });

  it('flags one epoch belonging to two members', () => {
    const h = history([file(0, 'a-0', leaderDoc('a-0', '100', 0, 0)), file(5000, 'b-1', leaderDoc('b-1', '100', 5000, 5000))]);
    expect(epochsGrow(h).map((v) => v.message)).toEqual(['epoch 100 belongs to two members: a-0 and b-1']);
  });

  it('orders leaderships by their since, so a crashed leader\'s file first seen beside its successor\'s is not a step down', () => {
    const h = history([file(9000, 'b-1', leaderDoc('b-1', '200', 8000, 8000)), file(9000, 'a-0', leaderDoc('a-0', '100', 0, 1000))]);
    expect(epochsGrow(h)).toEqual([]);
    expect(leaderEpochs(h)).toEqual(['100', '200']);
  });
});

describe('noTwoLeaderLabels and leaderLabelEpochsGrow', () => {
  it('flag a crashed leader\'s stale label beside the new leader\'s in one list', () => {
    const h = history([], [label(0, 'a-0', 'leader', '100'), label(0, 'b-1', 'follower'), label(5000, 'b-1', 'leader', '200'), label(5020, 'a-0', 'follower')]);
    const v = noTwoLeaderLabels(h);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toBe('2 pods labelled zkleader.io/role=leader at 10:00:05.000: a-0 (epoch 100), b-1 (epoch 200)');
    expect(v[0]?.window.map((o) => o.at - T0)).toEqual([0, 5000]);
  });

  it('pass a new leader that demotes the stale label before labelling itself', () => {
    const h = history([], [label(0, 'a-0', 'leader', '100'), label(0, 'b-1', 'follower'), label(5000, 'a-0', 'follower'), label(5020, 'b-1', 'leader', '200')]);
    expect(noTwoLeaderLabels(h)).toEqual([]);
    expect(leaderLabelEpochsGrow(h)).toEqual([]);
  });

  it('pass a handover in one list (the old leader\'s label and the new one\'s changed between two lists)', () => {
    const h = history([], [label(0, 'a-0', 'leader', '100'), label(100, 'a-0', 'follower'), label(100, 'b-1', 'leader', '200')]);
    expect(noTwoLeaderLabels(h)).toEqual([]);
  });

  it('accept the same pod labelled leader again with the same epoch; flag a lower epoch and a missing one', () => {
    const same = history([], [label(0, 'a-0', 'leader', '100'), label(300, 'a-0', 'follower'), label(600, 'a-0', 'leader', '100')]);
    expect(leaderLabelEpochsGrow(same)).toEqual([]);
    const down = history([], [label(0, 'b-1', 'leader', '200'), label(100, 'b-1', 'follower'), label(200, 'a-0', 'leader', '100')]);
    expect(leaderLabelEpochsGrow(down).map((v) => v.message)).toEqual(['a-0 was labelled leader with epoch 100 after b-1 had been with 200']);
    const missing = history([], [label(0, 'a-0', 'leader', null)]);
    expect(leaderLabelEpochsGrow(missing)).toHaveLength(1);
  });
});

describe('epochIsCzxid', () => {
  const czxids = new Map([
    ['a-0', ['100']],
    ['b-1', ['101', '200']],
  ]);

  it('passes epochs that are czxids of the leader\'s own nodes', () => {
    const h = history([...start, file(5000, 'b-1', leaderDoc('b-1', '200', 5000, 5000)), file(5000, 'a-0', followerDoc('a-0', 'b-1', '200', 5000))]);
    expect(epochIsCzxid(h, czxids)).toEqual([]);
  });

  it('flags a leader publishing another member\'s czxid, and a follower naming a leader whose nodes lack that epoch', () => {
    const h = history([file(0, 'a-0', leaderDoc('a-0', '101', 0, 0)), file(0, 'b-1', followerDoc('b-1', 'a-0', '200', 0))]);
    expect(epochIsCzxid(h, czxids).map((v) => v.message)).toEqual([
      "leader a-0 published epoch 101, which is no czxid of a-0's candidate nodes (100)",
      "b-1, a follower of a-0, published epoch 200, which is no czxid of a-0's candidate nodes (100)",
    ]);
  });
});

describe('checkHistory, expectSafeHistory and formatViolations', () => {
  it('passes a whole good failover history', () => {
    const h = history(
      [...start, file(1000, 'a-0', leaderDoc('a-0', '100', 0, 1000)), file(4800, 'b-1', leaderDoc('b-1', '200', 4700, 4700))],
      [label(0, 'a-0', 'leader', '100'), label(0, 'b-1', 'follower'), label(4810, 'a-0', 'follower'), label(4820, 'b-1', 'leader', '200')],
    );
    expect(checkHistory(h, { czxidsByPod: new Map([['a-0', ['100']], ['b-1', ['200']]]) })).toEqual([]);
    expect(() => expectSafeHistory(h)).not.toThrow();
    expect(formatViolations([])).toBe('');
  });

  it('throws with every violated property, what broke, and the window with timestamps', () => {
    const h = history([...start, file(100, 'b-1', leaderDoc('b-1', '200', 90, 90))]);
    let message = '';
    try {
      expectSafeHistory(h);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('✗ noTwoValidLeaders: two valid leaders at once from 10:00:00.100 to 10:00:02.666');
    expect(message).toContain('✗ leaseBeforeSuccessor: the lease of a-0 (epoch 100) was valid until 10:00:02.666');
    expect(message).toContain('    10:00:00.000  a-0  leader epoch=100 since=10:00:00.000 renewedAt=10:00:00.000 validUntil=10:00:02.666');
    expect(message).toContain('    10:00:00.100  b-1  leader epoch=200 since=10:00:00.090');
  });
});

describe('LeaderHistoryRecorder (on real files)', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'leader-history-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function volume(pod: string): { member: string; dir: string } {
    const dir = join(root, pod);
    mkdirSync(dir);
    return { member: pod, dir };
  }
  const write = (dir: string, text: string) => writeFileSync(join(dir, 'leader.json'), text);

  it('records changes only, a half-written file as an error, a vanished file as an error, a removed volume as gone', async () => {
    const a = volume('a-0');
    // Sampled by hand: the timer's period is longer than the test.
    const recorder = await LeaderHistoryRecorder.start({ members: () => [a], intervalMs: 60_000 });
    const doc = JSON.stringify(leaderDoc('a-0', '100', 0, 0));
    write(a.dir, doc);
    recorder.sample();
    recorder.sample();
    write(a.dir, doc.slice(0, 40));
    recorder.sample();
    rmSync(join(a.dir, 'leader.json'));
    // Missing once could be a volume halfway through its removal; missing twice is a lost file.
    recorder.sample();
    expect(recorder.history().files.at(-1)?.error).toMatch(/^not JSON/);
    recorder.sample();
    rmSync(a.dir, { recursive: true });
    const h = await recorder.stop();
    const described = h.files.map((o) => (o.error !== undefined ? `error: ${o.error.slice(0, 8)}` : o.gone ? 'gone' : (o.doc?.state ?? 'none')));
    expect(described).toEqual(['none', 'leader', 'error: not JSON', 'error: leader.j', 'gone']);
    expect(filesReadable(h)).toHaveLength(2);
    expect(recorder.violations.map((v) => v.property)).toEqual(['filesReadable']);
  });

  it('records a volume removed between two samples as gone, not as a lost file', async () => {
    const a = volume('a-0');
    write(a.dir, JSON.stringify(leaderDoc('a-0', '100', 0, 0)));
    const recorder = await LeaderHistoryRecorder.start({ members: () => [a], intervalMs: 60_000 });
    // Sampled in the middle of `rm -r`: the file is gone, its directory not yet.
    rmSync(join(a.dir, 'leader.json'));
    recorder.sample();
    rmSync(a.dir, { recursive: true });
    const h = await recorder.stop();
    expect(h.files.map((o) => (o.gone ? 'gone' : (o.error ?? o.doc?.state)))).toEqual(['leader', 'gone']);
    expect(filesReadable(h)).toEqual([]);
  });

  it('keeps sampling a member whose process is gone: its file still counts', async () => {
    const a = volume('a-0');
    const b = volume('b-1');
    write(a.dir, JSON.stringify(leaderDoc('a-0', '100', Date.now() - T0, Date.now() - T0, Date.now() - T0 + 60_000)));
    const recorder = await LeaderHistoryRecorder.start({ members: () => [a, b], intervalMs: 60_000 });
    // a-0 "crashed" with a lease a minute long; b-1 takes over while it runs.
    write(b.dir, JSON.stringify(leaderDoc('b-1', '200', Date.now() - T0, Date.now() - T0)));
    const waiting = recorder.guard(new Promise<void>(() => undefined));
    recorder.sample();
    await expect(waiting).rejects.toThrow(/safety violated while recording:\n✗ noTwoValidLeaders: two valid leaders at once/);
    await expect(recorder.guard(Promise.resolve(1))).rejects.toThrow('noTwoValidLeaders');
    await recorder.stop();
  });

  it('records the labels of the listed pods, a pod no longer listed as without a role, and fails a guarded wait on two leader labels', async () => {
    const pods: V1Pod[] = [
      { metadata: { name: 'a-0', labels: { 'zkleader.io/role': 'leader' }, annotations: { 'zkleader.io/leader-epoch': '100' } } },
      { metadata: { name: 'b-1', labels: { 'zkleader.io/role': 'follower' } } },
    ];
    const selectors: string[] = [];
    const source = podsThroughApi(
      {
        listNamespacedPod: async (request: { namespace: string; labelSelector?: string }): Promise<V1PodList> => {
          selectors.push(`${request.namespace} ${request.labelSelector ?? ''}`);
          return { items: structuredClone(pods) };
        },
      },
      'shop',
      'orders',
    );
    const recorder = await LeaderHistoryRecorder.start({ members: () => [], labels: source, intervalMs: 5 });
    const waiting = recorder.guard(new Promise<void>(() => undefined));
    pods[1] = { metadata: { name: 'b-1', labels: { 'zkleader.io/role': 'leader' }, annotations: { 'zkleader.io/leader-epoch': '200' } } };
    await expect(waiting).rejects.toThrow('noTwoLeaderLabels: 2 pods labelled zkleader.io/role=leader');
    pods.splice(0, 1);
    const h = await recorder.stop();
    expect(selectors[0]).toBe('shop zkleader.io/election=orders');
    expect(h.labels.map((o) => `${o.pod}=${o.role ?? 'none'}`)).toEqual(['a-0=leader', 'b-1=follower', 'b-1=leader', 'a-0=none']);
  });

  it('reads the emulator\'s store only after a request was served, and only the election\'s pods', async () => {
    const requests: { method: string; path: string; query: string; status: number }[] = [];
    let reads = 0;
    const store: V1Pod[] = [
      { metadata: { name: 'a-0', namespace: 'shop', labels: { 'zkleader.io/election': 'orders', 'zkleader.io/role': 'leader' }, annotations: { 'zkleader.io/leader-epoch': '100' } } },
      { metadata: { name: 'other', namespace: 'shop', labels: { 'zkleader.io/election': 'billing', 'zkleader.io/role': 'leader' } } },
    ];
    const emulator = {
      requests,
      listPods: (namespace?: string): V1Pod[] => {
        reads++;
        return store.filter((p) => p.metadata?.namespace === namespace);
      },
    };
    const recorder = await LeaderHistoryRecorder.start({ members: () => [], labels: podsInEmulator(emulator, 'shop', 'orders') });
    await new Promise((resolve) => setTimeout(resolve, 30));
    // Nothing was served since the first read: no new read.
    expect(reads).toBe(1);
    store[0] = { metadata: { name: 'a-0', namespace: 'shop', labels: { 'zkleader.io/election': 'orders', 'zkleader.io/role': 'follower' } } };
    requests.push({ method: 'PATCH', path: '/api/v1/namespaces/shop/pods/a-0', query: '', status: 200 });
    const h = await recorder.stop();
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(h.labels.map((o) => `${o.pod}=${o.role ?? 'none'}`)).toEqual(['a-0=leader', 'a-0=follower']);
  });
});
