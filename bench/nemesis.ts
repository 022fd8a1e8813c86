// The long randomized fault run of issue 9 (the short one runs in every test run:
// test/integration/electionNemesis.test.ts): real sidecar processes on a partitionable
// 3-node ZooKeeper ensemble, a random schedule of faults, and the whole history checked.
// Run: npm run bench:nemesis (NEMESIS_MINUTES, default 10; NEMESIS_SEED to replay).
// Prints a Markdown section for bench/RESULTS.md; exits 1 on any violation.
import { cpus } from 'node:os';
import { describeNemesisRun, runNemesis, type FaultKind } from '../test/support/nemesis.js';
import { ZooKeeperEnsemble } from '../test/support/zookeeperEnsemble.js';

const minutes = Number(process.env.NEMESIS_MINUTES ?? 10);
const seed = Number(process.env.NEMESIS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const sessionTimeoutMs = 4000;
const syncLimit = 30;
const tickTimeMs = 200;

async function main(): Promise<number> {
  const ensemble = await ZooKeeperEnsemble.start({ size: 3, partitionable: true, syncLimit, tickTimeMs });
  const startedAt = Date.now();
  try {
    const result = await runNemesis({
      ensemble,
      election: 'nemesis',
      durationMs: minutes * 60_000,
      seed,
      sessionTimeoutMs,
      log: process.env.NEMESIS_VERBOSE ? (line) => process.stderr.write(`${line}\n`) : undefined,
    });
    const byKind = new Map<FaultKind, number>();
    for (const f of result.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
    const files = result.history.files;
    const lines = [
      '## Election under a random nemesis',
      '',
      `Measured ${new Date(startedAt).toISOString().slice(0, 10)} on ${cpus().length} cores, Node ${process.version}: ${(((Date.now() - startedAt) / 60_000)).toFixed(1)} minutes, seed ${seed}; a 3-node ZooKeeper ensemble on loopback (tickTime ${tickTimeMs} ms, syncLimit ${syncLimit}: a cut-off server answers for ${(syncLimit * tickTimeMs) / 1000} s) with a proxy on every server-to-server and client-to-server link; 3 sidecar processes (session timeout ${sessionTimeoutMs / 1000} s, every replacement a new member). Rounds of every fault kind once in a random order, one fault at a time, held 0.3 s to 1.5 session timeouts (the leader's server frozen off the quorum: 1 to 2 timeouts), then 0.2 s to 1 session timeout of quiet; member faults hit the leader (a pause one time in three another member), half the server faults the leader's server. Every member's leader.json sampled every 10 ms, the candidate nodes' czxids every 10 ms. \`npm run bench:nemesis\` (test/support/nemesis.ts).`,
      '',
      '| measure | result |',
      '|---|---|',
      `| faults | ${result.faults.length}: ${[...byKind].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')} |`,
      `| members started | ${result.membersStarted} |`,
      `| leaderships (distinct epochs, in order) | ${result.epochs.length} |`,
      `| recorded file changes | ${files.length} |`,
      `| agreement after the last heal | ${Math.round(result.recoveryMs)} ms |`,
      `| violations (never two valid leaders, lease before successor, epochs grow and are czxids, files readable) | ${result.violations.length} |`,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (result.violations.length > 0) {
      process.stderr.write(`${describeNemesisRun(result)}\n`);
      return 1;
    }
    return 0;
  } finally {
    await ensemble.close();
  }
}

process.exitCode = await main();
