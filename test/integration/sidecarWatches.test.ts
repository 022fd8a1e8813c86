import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { electionOrder } from '../../zookeeper/candidateNode.js';
import { LeaderElection } from '../../zookeeper/election.js';
import type { ElectionSnapshot } from '../../zookeeper/electionSnapshot.js';
import { fourLetterWord } from '../support/fourLetterWord.js';
import { connectZooKeeper } from '../support/zookeeperClient.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// DESIGN.md: each candidate watches only its predecessor (no herd effect on joins and
// leaves); followers learn the leader by watching the leader node only. The server's
// own watch table (`wchp`: path → watching sessions) shows what the members really watch.

let ensemble: ZooKeeperEnsemble;
const elections: LeaderElection[] = [];

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
}, 60_000);

afterAll(async () => {
  await Promise.all(elections.map((e) => e.close()));
  await ensemble?.close();
});

/** `wchp` output: a path line followed by indented session ids. */
function parseWatchesByPath(text: string): Map<string, string[]> {
  const watches = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('/')) {
      current = [];
      watches.set(line.trim(), current);
    } else if (line.trim().startsWith('0x') && current) {
      current.push(line.trim());
    }
  }
  return watches;
}

describe('watches', () => {
  it('the leader node is watched by every member, each other node by its successor alone, the election node by nobody', async () => {
    const path = '/zkleader/test/watches';
    const latest = new Map<string, ElectionSnapshot>();
    const n = 5;
    for (let i = 0; i < n; i++) {
      const pod = `watch-${i}`;
      const election = new LeaderElection({
        connectString: ensemble.connectString,
        sessionTimeoutMs: 6000,
        electionPath: path,
        self: { pod, ip: null, uid: null, namespace: 'test', startedAt: new Date().toISOString() },
        logger: pino({ level: 'silent' }),
      });
      election.on('update', (snapshot) => latest.set(pod, snapshot));
      elections.push(election);
      election.start();
    }
    const deadline = Date.now() + 20_000;
    const settled = () => latest.size === n && [...latest.values()].every((s) => s.members.length === n && s.state !== 'unknown');
    while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(settled()).toBe(true);

    const observer = await connectZooKeeper(ensemble.connectString);
    const ordered = electionOrder((await observer.get_children(path, false)) as string[]).map((c) => c.name);
    observer.close();
    expect(ordered).toHaveLength(n);

    const port = ensemble.servers[0]?.clientPort as number;
    const watches = parseWatchesByPath(await fourLetterWord(port, 'wchp'));
    // No member watches the children list: a join or a leave wakes one member at most.
    expect(watches.has(path)).toBe(false);
    const watchers = ordered.map((node) => watches.get(`${path}/${node}`)?.length ?? 0);
    // Leader node: every follower (to learn the leader) and the leader itself (to notice its loss).
    // Every other node: its successor only; the last node: nobody.
    expect(watchers).toEqual([n, ...Array.from({ length: n - 2 }, () => 1), 0]);
  }, 60_000);
});
