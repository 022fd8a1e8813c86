import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { describeNemesisRun, runNemesis } from '../support/nemesis.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// A short randomized fault run in every test run (bench/nemesis.ts runs the long one):
// partitions between servers and between clients and servers, paused and killed servers,
// members stopped, killed and paused; then the whole history is checked. The seed is new
// each run and printed on failure (ZKLEADER_NEMESIS_SEED replays one).

let ensemble: ZooKeeperEnsemble;

beforeAll(async () => {
  // syncLimit 30 × tickTime 200 ms: a server cut off from the quorum keeps answering its
  // clients for 6 s, longer than their 4 s session timeout — the quorum expires a member's
  // session and elects a successor while that member still hears from its server. The
  // liveness half of the lease condition fails on purpose; safety must still hold.
  ensemble = await ZooKeeperEnsemble.start({ size: 3, partitionable: true, syncLimit: 30 });
}, 60_000);

afterAll(async () => {
  await ensemble?.close();
});

describe('election under a random nemesis', () => {
  it('never two valid leaders, every lease over before the next leadership, epochs that grow and are czxids', async () => {
    const seed = Number(process.env.ZKLEADER_NEMESIS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const result = await runNemesis({ ensemble, election: 'nemesis', durationMs: Number(process.env.ZKLEADER_NEMESIS_MS ?? 50_000),
      seed,
      ...(process.env.ZKLEADER_NEMESIS_LOG === '1' && { log: (line: string) => process.stderr.write(`${line}\n`) }),
    });
    if (result.violations.length > 0) throw new Error(describeNemesisRun(result));
    expect(result.faults.length).toBeGreaterThanOrEqual(5);
    // Each leader stopped or killed meant a new leadership: the checks were over a real history.
    const leadersRemoved = result.faults.filter((f) => (f.kind === 'stop-member' || f.kind === 'kill-member') && f.detail.includes('(the leader)')).length;
    expect(result.epochs.length).toBeGreaterThanOrEqual(1 + leadersRemoved);
    expect(result.history.files.length).toBeGreaterThan(20);
  }, 180_000);
});
