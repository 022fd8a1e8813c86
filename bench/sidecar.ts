// Sidecar benchmarks (issue 3): graceful hand-over latency, crash failover time against the
// session timeout, idle RSS and CPU. Real 3-node ZooKeeper, real sidecar processes.
// Run: npm run bench:sidecar. Prints a Markdown section for bench/RESULTS.md.
// A peer in the same run (issue 15): Curator's LeaderLatch (bench/curatorPeer.ts), measured
// in the same loops, on the same ensemble, with the same session timeout and polling.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SIDECAR_NODE_OPTIONS } from '../src/buildSidecar.js';
import { ApiEmulator } from '../test/support/apiEmulator/index.js';
import { SidecarProcess, waitForAgreement } from '../test/support/sidecarProcess.js';
import { testAdminCredential, ZooKeeperEnsemble } from '../test/support/zookeeperEnsemble.js';
import { compileCuratorParticipant, CuratorParticipant, javaRuntime, waitForCuratorAgreement } from './curatorPeer.js';
import { digestId, formatCredential, generatePassword, tenantUser } from '../zookeeper/credentials.js';
import { ZooKeeperSession } from '../zookeeper/session.js';
import { ensureTenant, lockRoot } from '../zookeeper/tenants.js';

const handoverRuns = Number(process.env.HANDOVER_RUNS ?? 25);
const crashRuns = Number(process.env.CRASH_RUNS ?? 3);
const sessionTimeoutMs = 4000;
/** The injected NODE_OPTIONS, or others to compare (SIDECAR_NODE_OPTIONS='...'). */
const nodeOptions = process.env.SIDECAR_NODE_OPTIONS ?? SIDECAR_NODE_OPTIONS;

function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

/**
 * Milliseconds from `start` until one of `candidates` has its file (a sidecar's leader.json, a
 * Curator participant's state file) saying it leads (polled every 1 ms).
 */
async function untilNewLeader<T>(candidates: readonly T[], leads: (c: T) => boolean, start: bigint, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (candidates.some(leads)) return Number(process.hrtime.bigint() - start) / 1e6;
    if (Date.now() > deadline) throw new Error(`no new leader within ${timeoutMs} ms`);
    await sleep(1);
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) / 1024;
}

/** utime + stime of a process, in clock ticks (100 per second on Linux). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Until `pid` has used no CPU for 100 ms (two 50 ms samples in a row; at most 3 s): a newcomer
 * has settled, so the next run's hand-over does not share the 2 cores with its start-up (a
 * JVM compiles for ~300 ms after it joins, a sidecar ~100 ms).
 */
async function untilQuiet(pid: number): Promise<void> {
  const deadline = Date.now() + 3000;
  let last = cpuTicks(pid);
  for (let quiet = 0; quiet < 2 && Date.now() < deadline; ) {
    await sleep(50);
    const now = cpuTicks(pid);
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}

/** Open mode, and a tenant's members with --credential-file (auth before the first request, ACL in every create). */
type Mode = 'open' | 'tenancy';
const modes: readonly Mode[] = ['open', 'tenancy'];
/** The sidecar's modes, and the Curator peer. */
type Kind = Mode | 'curator';
const sidecarLeads = (s: SidecarProcess) => s.document()?.isLeader === true;
const curatorLeads = (c: CuratorParticipant) => c.isLeader();

async function main(): Promise<void> {
  // Compiled (or found compiled) before anything is measured; fails early, naming the package.
  compileCuratorParticipant();
  const java = javaRuntime();
  const ensemble = await ZooKeeperEnsemble.start({ size: 3 });
  const all: SidecarProcess[] = [];
  const allCurator: CuratorParticipant[] = [];
  let n = 0;
  const api = await ApiEmulator.start();
  const kubeconfig = await api.kubeconfigFile();
  // The tenant `bench-tenant`, made as `zkleader tenant add` makes it.
  const dir = mkdtempSync(join(tmpdir(), 'zkleader-bench-'));
  const credential = { user: tenantUser('bench-tenant'), password: generatePassword() };
  const credentialFile = join(dir, 'credential');
  writeFileSync(credentialFile, formatCredential(credential));
  const admin = new ZooKeeperSession({ connectString: ensemble.connectString, sessionTimeoutMs, credential: testAdminCredential });
  await new Promise((resolve) => admin.once('connected', () => resolve(undefined)));
  // Open mode's namespace was there before the root was locked (as after a migration).
  await admin.ensurePath('/zkleader/test');
  await lockRoot(admin, '/zkleader');
  await ensureTenant(admin, '/zkleader', 'bench-tenant', [digestId(credential)]);
  admin.close();
  const startIn = async (mode: Mode, election: string) => {
    const s = await SidecarProcess.start({
      zookeeper: ensemble.connectString,
      election,
      podName: `${election}-${n++}`,
      sessionTimeout: `${sessionTimeoutMs}ms`,
      env: { NODE_OPTIONS: nodeOptions },
      ...(mode === 'tenancy' && { namespace: 'bench-tenant', extraArgs: ['--credential-file', credentialFile] }),
    });
    all.push(s);
    return s;
  };
  const startCurator = async (election: string) => {
    const c = await CuratorParticipant.start({ connectString: ensemble.connectString, election, id: `curator-${election}-${n++}`, sessionTimeoutMs, dir });
    allCurator.push(c);
    return c;
  };
  const start = async (election: string, labelling = false) => {
    const podName = `${election}-${n++}`;
    if (labelling) {
      api.putPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: podName, namespace: 'test', labels: { 'zkleader.io/election': election } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } });
    }
    const s = await SidecarProcess.start({
      zookeeper: ensemble.connectString,
      election,
      podName,
      sessionTimeout: `${sessionTimeoutMs}ms`,
      // As the webhook injects it.
      env: { NODE_OPTIONS: nodeOptions },
      ...(labelling && { kubeconfig }),
    });
    all.push(s);
    return s;
  };
  try {
    // Graceful hand-over: SIGTERM to the leader → the successor's leader.json says leader.
    // Open and tenancy runs alternate, so both see the same machine.
    // The Curator peer's runs alternate with them too: the same loop, the same measure. Every
    // run's newcomer joins and settles before the next run, whichever kind that is.
    const groups = new Map<Mode, SidecarProcess[]>();
    const handoversBy = new Map<Kind, number[]>([...modes, 'curator' as const].map((m) => [m, []]));
    for (const mode of modes) groups.set(mode, [await startIn(mode, 'handover'), await startIn(mode, 'handover'), await startIn(mode, 'handover')]);
    let curatorGroup = [await startCurator('handover'), await startCurator('handover'), await startCurator('handover')];
    for (let i = 0; i < handoverRuns; i++) {
      for (const mode of modes) {
        const group = groups.get(mode) as SidecarProcess[];
        const { leader } = await waitForAgreement(group, 20_000);
        const rest = group.filter((s) => s !== leader);
        const t0 = process.hrtime.bigint();
        leader.signal('SIGTERM');
        handoversBy.get(mode)?.push(await untilNewLeader(rest, sidecarLeads, t0, 10_000));
        await leader.exited;
        await leader.close();
        const newcomer = await startIn(mode, 'handover');
        groups.set(mode, [...rest, newcomer]);
        await waitForAgreement(groups.get(mode) as SidecarProcess[], 20_000);
        await untilQuiet(newcomer.pid);
      }
      const { leader } = await waitForCuratorAgreement(curatorGroup, 20_000);
      const rest = curatorGroup.filter((c) => c !== leader);
      const t0 = process.hrtime.bigint();
      leader.signal('SIGTERM');
      handoversBy.get('curator')?.push(await untilNewLeader(rest, curatorLeads, t0, 10_000));
      await leader.exited;
      await leader.close();
      const newcomer = await startCurator('handover');
      curatorGroup = [...rest, newcomer];
      await waitForCuratorAgreement(curatorGroup, 20_000);
      await untilQuiet(newcomer.pid);
    }
    await Promise.all([...groups.values()].flat().map((s) => s.close()));

    // Not timed: that the peer is one election. A few more Curator hand-overs with every
    // participant's state file (the leaving one's too) sampled every 1 ms from before the
    // SIGTERM until 200 ms after the successor leads: never more than one says it leads.
    const checkRuns = 3;
    let checkSamples = 0;
    let mostLeaders = 0;
    for (let i = 0; i < checkRuns; i++) {
      const { leader } = await waitForCuratorAgreement(curatorGroup, 20_000);
      const rest = curatorGroup.filter((c) => c !== leader);
      let successorSince: number | undefined;
      leader.signal('SIGTERM');
      const deadline = Date.now() + 10_000;
      while (successorSince === undefined || Date.now() < successorSince + 200) {
        const leading = curatorGroup.filter(curatorLeads);
        checkSamples++;
        mostLeaders = Math.max(mostLeaders, leading.length);
        if (successorSince === undefined && leading.some((c) => c !== leader)) successorSince = Date.now();
        if (Date.now() > deadline) throw new Error('Curator check: no successor within 10 s');
        await sleep(1);
      }
      await leader.exited;
      await leader.close();
      curatorGroup = [...rest, await startCurator('handover')];
    }
    await Promise.all(curatorGroup.map((c) => c.close()));

    // What the sync before every renewing read costs: its round trip on its own.
    const syncs: number[] = [];
    const probe = new ZooKeeperSession({ connectString: ensemble.connectString, sessionTimeoutMs });
    await new Promise((resolve) => probe.once('connected', () => resolve(undefined)));
    for (let i = 0; i < 200; i++) {
      const t0 = process.hrtime.bigint();
      await probe.sync('/zkleader');
      syncs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    probe.close();
    const syncSorted = [...syncs].sort((a, b) => a - b);

    // Crash: SIGKILL to the leader → the successor leads once ZooKeeper expires the session.
    const crashesBy = new Map<Kind, number[]>([...modes, 'curator' as const].map((m) => [m, []]));
    for (const mode of modes) groups.set(mode, [await startIn(mode, 'crash'), await startIn(mode, 'crash')]);
    curatorGroup = [await startCurator('crash'), await startCurator('crash')];
    for (let i = 0; i < crashRuns; i++) {
      for (const mode of modes) {
        const group = groups.get(mode) as SidecarProcess[];
        const { leader } = await waitForAgreement(group, 20_000);
        const rest = group.filter((s) => s !== leader);
        const t0 = process.hrtime.bigint();
        leader.signal('SIGKILL');
        crashesBy.get(mode)?.push(await untilNewLeader(rest, sidecarLeads, t0, 3 * sessionTimeoutMs));
        await leader.close();
        groups.set(mode, [...rest, await startIn(mode, 'crash')]);
      }
      const { leader } = await waitForCuratorAgreement(curatorGroup, 20_000);
      const rest = curatorGroup.filter((c) => c !== leader);
      const t0 = process.hrtime.bigint();
      leader.signal('SIGKILL');
      crashesBy.get('curator')?.push(await untilNewLeader(rest, curatorLeads, t0, 3 * sessionTimeoutMs));
      await leader.close();
      curatorGroup = [...rest, await startCurator('crash')];
    }
    await Promise.all([...groups.values()].flat().map((s) => s.close()));
    await Promise.all(curatorGroup.map((c) => c.close()));

    // Idle: a leader and a follower labelling their pods (the default), and a pair with
    // --no-label, measured together 20 s after they settled; a Curator leader and follower
    // in the same window.
    const labelled = [await start('idle', true), await start('idle', true)];
    const unlabelled = [await start('idle-nolabel'), await start('idle-nolabel')];
    const curatorPair = [await startCurator('idle'), await startCurator('idle')];
    await waitForAgreement(labelled, 20_000);
    await waitForAgreement(unlabelled, 20_000);
    const { leader: curatorLeader } = await waitForCuratorAgreement(curatorPair, 20_000);
    const curatorIdle = [curatorLeader, ...curatorPair.filter((c) => c !== curatorLeader)];
    await sleep(3000);
    const idleSeconds = 20;
    const idle = [...labelled, ...unlabelled, ...curatorIdle];
    const ticks0 = idle.map((s) => cpuTicks(s.pid));
    await sleep(idleSeconds * 1000);
    const cpu = idle.map((s, i) => ((cpuTicks(s.pid) - (ticks0[i] as number)) / 100 / idleSeconds) * 100);
    const rss = idle.map((s) => rssMb(s.pid));
    await Promise.all([...labelled, ...unlabelled].map((s) => s.close()));
    await Promise.all(curatorIdle.map((c) => c.close()));

    const fmt = (x: number) => x.toFixed(1);
    const handoverRow = (mode: Mode) => {
      const sorted = [...(handoversBy.get(mode) ?? [])].sort((a, b) => a - b);
      return `| graceful hand-over, ${mode}, SIGTERM → successor's leader.json (${sorted.length} runs) | p50 ${fmt(percentile(sorted, 50))} ms, p99 ${fmt(percentile(sorted, 99))} ms (min ${fmt(sorted[0] ?? NaN)}, max ${fmt(sorted.at(-1) ?? NaN)}) | p99 < 100 ms |`;
    };
    const p50 = (kind: Kind) => percentile([...(handoversBy.get(kind) ?? [])].sort((a, b) => a - b), 50);
    const p99 = (kind: Kind) => percentile([...(handoversBy.get(kind) ?? [])].sort((a, b) => a - b), 99);
    const curatorHandovers = [...(handoversBy.get('curator') ?? [])].sort((a, b) => a - b);
    const curatorCrashes = crashesBy.get('curator') ?? [];
    const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const ratio = (x: number) => x.toFixed(2);
    const crashRow = (mode: Mode) => {
      const crashes = crashesBy.get(mode) ?? [];
      return `| crash failover, ${mode}, SIGKILL → successor's leader.json, / session timeout (${crashes.length} runs) | ${crashes.map((ms) => (ms / sessionTimeoutMs).toFixed(2)).join(', ')} (${crashes.map((ms) => `${Math.round(ms)} ms`).join(', ')}) | ≤ 1.1 |`;
    };
    const lines = [
      '## Sidecar',
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, a 3-node ZooKeeper 3.8 ensemble on loopback (tickTime 200 ms), session timeout ${sessionTimeoutMs / 1000} s, hand-over and crash runs with --no-label, every sidecar with NODE_OPTIONS ${JSON.stringify(nodeOptions)}${nodeOptions === SIDECAR_NODE_OPTIONS ? ' (the injected ones)' : ''}; open-mode and tenancy runs (a tenant made as \`zkleader tenant add\` makes it, members with --credential-file) alternate in the same run; other work may have been running on the machine. \`npm run bench:sidecar\`.` +
        ` The peer, in the same loops (a Curator run after each open and tenancy run, same ensemble, session timeout and 1 ms polling; every hand-over starts once the previous run's newcomer, of whichever kind, has joined and used no CPU for 100 ms): Apache Curator ${java.curatorVersion}'s LeaderLatch (Debian's libcurator-recipes-java, its ZooKeeper 3.8 client) in a small Java participant, bench/curator/LeaderLatchParticipant.java, that writes its state file atomically on isLeader/notLeader and on SUSPENDED/LOST, and on SIGTERM writes not-leader and closes the latch; ${java.version} with no JVM flags, so its defaults for this machine: ${java.gc}, initial heap ${Math.round(java.initialHeapMb)} MB, max heap ${Math.round(java.maxHeapMb)} MB (1/64 and 1/4 of RAM); slf4j-nop (no logging).`,
      '',
      '| measure | result | target |',
      '|---|---|---|',
      handoverRow('open'),
      handoverRow('tenancy'),
      `| hand-over p99, tenancy − open | ${fmt(p99('tenancy') - p99('open'))} ms | ≤ 10 ms |`,
      `| one \`sync\` round trip, which every renewal and check now sends first (200 runs) | p50 ${fmt(percentile(syncSorted, 50))} ms, p99 ${fmt(percentile(syncSorted, 99))} ms | |`,
      crashRow('open'),
      crashRow('tenancy'),
      `| idle RSS, labelling pods (leader, follower) | ${rss.slice(0, 2).map((r) => `${fmt(r)} MB`).join(', ')} | ≤ 60 MB |`,
      `| idle RSS, --no-label (leader, follower) | ${rss.slice(2, 4).map((r) => `${fmt(r)} MB`).join(', ')} | ≤ 60 MB |`,
      `| idle CPU over ${idleSeconds} s, labelling (leader, follower) | ${cpu.slice(0, 2).map((c) => `${c.toFixed(2)} %`).join(', ')} | |`,
      `| idle CPU over ${idleSeconds} s, --no-label (leader, follower) | ${cpu.slice(2, 4).map((c) => `${c.toFixed(2)} %`).join(', ')} | |`,
      `| Curator LeaderLatch: graceful hand-over, SIGTERM → successor's state file (${curatorHandovers.length} runs) | p50 ${fmt(percentile(curatorHandovers, 50))} ms, p99 ${fmt(percentile(curatorHandovers, 99))} ms (min ${fmt(curatorHandovers[0] ?? NaN)}, max ${fmt(curatorHandovers.at(-1) ?? NaN)}) | |`,
      `| Curator LeaderLatch: one leader at a time, all 3 state files sampled every 1 ms through ${checkRuns} more hand-overs (${checkSamples} samples) | at most ${mostLeaders} said it leads | 1 |`,
      `| Curator LeaderLatch: crash failover, SIGKILL → successor's state file, / session timeout (${curatorCrashes.length} runs) | ${curatorCrashes.map((ms) => (ms / sessionTimeoutMs).toFixed(2)).join(', ')} (${curatorCrashes.map((ms) => `${Math.round(ms)} ms`).join(', ')}) | |`,
      `| Curator LeaderLatch: idle RSS (leader, follower) | ${rss.slice(4, 6).map((r) => `${fmt(r)} MB`).join(', ')} | |`,
      `| Curator LeaderLatch: idle CPU over ${idleSeconds} s (leader, follower) | ${cpu.slice(4, 6).map((c) => `${c.toFixed(2)} %`).join(', ')} | |`,
      `| hand-over, zkleader (open) / Curator | p50 ${ratio(p50('open') / p50('curator'))}, p99 ${ratio(p99('open') / p99('curator'))} | |`,
      `| idle RSS, zkleader (--no-label) / Curator, mean of leader and follower | ${ratio(mean(rss.slice(2, 4)) / mean(rss.slice(4, 6)))} (labelling: ${ratio(mean(rss.slice(0, 2)) / mean(rss.slice(4, 6)))}) | |`,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await Promise.all(all.map((s) => s.close()));
    await Promise.all(allCurator.map((c) => c.close()));
    await ensemble.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
