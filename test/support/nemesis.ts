import { setTimeout as sleep } from 'node:timers/promises';
import { ElectionObserver } from './electionObserver.js';
import { checkHistory, formatViolations, LeaderHistoryRecorder, leaderEpochs, type LeaderHistory, type Violation } from './leaderHistory.js';
import { describeLinkMode, type LinkMode } from './linkProxy.js';
import { SidecarProcess, waitForAgreement } from './sidecarProcess.js';
import type { ZooKeeperEnsemble, ZooKeeperServer } from './zookeeperEnsemble.js';

/*
 * A Jepsen-style nemesis (STYLE.md, jepsen-io/jepsen) for the election: real sidecar
 * processes on a partitionable ensemble (test/support/zookeeperEnsemble.ts), a random
 * schedule of faults — partitions between servers, between clients and servers, paused and
 * killed servers, members stopped, killed and paused — and a history of everything every
 * member published, checked afterwards by test/support/leaderHistory.ts: never two valid
 * leaders, every lease over before the next leadership, epochs that only grow and are the
 * leader node's czxid. Used by test/integration/electionNemesis.test.ts (a short run) and
 * bench/nemesis.ts (a long one). Not jest-specific.
 */

export interface NemesisOptions {
  /** Started with `partitionable: true`. */
  readonly ensemble: ZooKeeperEnsemble;
  readonly election: string;
  readonly members?: number;
  /** The members' session timeout in ms (4 s–40 s). */
  readonly sessionTimeoutMs?: number;
  /** How long to inject faults; healing and the final checks come after. */
  readonly durationMs: number;
  /** Seeds the schedule; a failing run prints it so that the same schedule can be replayed. */
  readonly seed: number;
  readonly log?: (line: string) => void;
}

export interface FaultRecord {
  readonly at: number;
  readonly kind: FaultKind;
  readonly detail: string;
  readonly heldMs: number;
}

export interface NemesisResult {
  readonly seed: number;
  readonly history: LeaderHistory;
  readonly faults: readonly FaultRecord[];
  readonly violations: readonly Violation[];
  /** The epochs of successive leaderships, in order. */
  readonly epochs: readonly string[];
  readonly membersStarted: number;
  /** Milliseconds from the last heal until every running member agreed on one leader. */
  readonly recoveryMs: number;
}

export type FaultKind =
  | 'isolate-leaders-server'
  | 'isolate-server'
  | 'isolate-zookeeper-leader'
  | 'cut-server-link'
  | 'cut-clients'
  | 'delay-clients'
  | 'pause-server'
  | 'kill-server'
  | 'stop-member'
  | 'kill-member'
  | 'pause-member';

const faultKinds: readonly FaultKind[] = [
  'isolate-leaders-server',
  'isolate-server',
  'isolate-zookeeper-leader',
  'cut-server-link',
  'cut-clients',
  'delay-clients',
  'pause-server',
  'kill-server',
  'stop-member',
  'kill-member',
  'pause-member',
];

/** mulberry32: a small seeded generator, so that a schedule can be replayed from its seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runNemesis(options: NemesisOptions): Promise<NemesisResult> {
  const { ensemble, election } = options;
  const memberCount = options.members ?? 3;
  const sessionTimeoutMs = options.sessionTimeoutMs ?? 4000;
  const log = options.log ?? (() => undefined);
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const between = (min: number, max: number) => Math.round(min + random() * (max - min));
  const shuffle = <T>(items: readonly T[]): T[] => {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  };

  const all: SidecarProcess[] = [];
  let started = 0;
  const startMember = async (): Promise<SidecarProcess> => {
    const member = await SidecarProcess.start({
      zookeeper: ensemble.clientConnectString,
      election,
      podName: `${election}-${started++}`,
      sessionTimeout: `${sessionTimeoutMs}ms`,
    });
    all.push(member);
    return member;
  };
  const running = () => all.filter((m) => m.alive);

  for (let i = 0; i < memberCount; i++) await startMember();
  const recorder = await LeaderHistoryRecorder.start({ members: () => all.map((m) => ({ member: m.podName, dir: m.dir })) });
  const observer = await ElectionObserver.start({ connectString: ensemble.connectString, electionPath: `/zkleader/test/${election}` });
  const faults: FaultRecord[] = [];
  const paused = new Set<SidecarProcess>();
  try {
    await waitForAgreement(running(), 30_000);
    const end = Date.now() + options.durationMs;
    // Rounds of every fault kind once, each round in a new random order.
    let round: FaultKind[] = [];
    while (Date.now() < end) {
      if (round.length === 0) round = shuffle(faultKinds);
      const kind = round.shift() as FaultKind;
      // Up to 1.5 session timeouts: some faults end within the session, some outlast it. The
      // leader's server is cut off for 1 to 2 timeouts: the quorum expires the leader's
      // session and elects a successor while that server may still answer the old leader.
      const holdMs = kind === 'isolate-leaders-server' ? between(sessionTimeoutMs, 2 * sessionTimeoutMs) : between(300, Math.round(1.5 * sessionTimeoutMs));
      const at = Date.now();
      const detail = await applyFault(kind, holdMs);
      faults.push({ at, kind, detail, heldMs: holdMs });
      log(`${new Date(at).toISOString()} ${kind} ${detail} for ${holdMs} ms`);
      // Quiet time between faults, sometimes long enough for the election to settle.
      await sleep(between(200, sessionTimeoutMs));
    }
  } catch (err) {
    // The harness failed, not the system: stop everything before reporting it.
    await healEverything().catch(() => undefined);
    await Promise.all([recorder.stop(), observer.stop(), ...all.map((m) => m.close())]);
    throw err;
  }
  await healEverything();
  const healedAt = Date.now();
  let recovery: number | Error;
  try {
    await waitForAgreement(running(), 60_000);
    recovery = Date.now() - healedAt;
    // A little more history after agreement: a late second leader would still show.
    await sleep(500);
  } catch (err) {
    recovery = err as Error;
  }
  const [history] = await Promise.all([recorder.stop(), observer.stop()]);
  await Promise.all(all.map((m) => m.close()));
  if (recovery instanceof Error) throw recovery;
  const recoveryMs = recovery;
  const violations = checkHistory(history, { czxidsByPod: observer.czxidsByPod() });
  return { seed: options.seed, history, faults, violations, epochs: leaderEpochs(history), membersStarted: started, recoveryMs };

  /** The running member whose file says it leads, if one does. */
  function leaderMember(): SidecarProcess | undefined {
    return running().find((m) => {
      try {
        return m.document()?.isLeader === true;
      } catch {
        return false;
      }
    });
  }

  function serverOf(member: SidecarProcess): Promise<ZooKeeperServer | undefined> {
    return serverOfMember(ensemble, member);
  }

  async function applyFault(kind: FaultKind, holdMs: number): Promise<string> {
    const servers = ensemble.servers.filter((s) => s.running && !s.paused);
    // Half the server faults hit the server of the leader member: the case the lease is for.
    const leader = leaderMember();
    const leaderServer = leader && random() < 0.5 ? await serverOf(leader) : undefined;
    const server = leaderServer ?? pick(servers);
    const linkMode = (): LinkMode => pick<LinkMode>(['drop', 'freeze']);
    switch (kind) {
      case 'isolate-leaders-server':
      case 'isolate-server':
      case 'isolate-zookeeper-leader': {
        const target =
          kind === 'isolate-leaders-server' ? ((leader && (await serverOf(leader))) ?? server) : kind === 'isolate-server' ? server : ((await ensemble.leader()) ?? server);
        // Frozen, the server stays silent and keeps its clients (the stale window); dropped, everyone notices at once.
        const mode: LinkMode = kind === 'isolate-leaders-server' ? 'freeze' : linkMode();
        ensemble.isolate(target, mode);
        await sleep(holdMs);
        ensemble.heal();
        return `server ${target.id} (${describeLinkMode(mode)})`;
      }
      case 'cut-server-link': {
        const other = pick(ensemble.servers.filter((s) => s !== server));
        const mode = linkMode();
        ensemble.cutLink(server, other, mode);
        await sleep(holdMs);
        ensemble.heal();
        return `servers ${server.id} and ${other.id} (${describeLinkMode(mode)})`;
      }
      case 'cut-clients':
      case 'delay-clients': {
        const mode: LinkMode = kind === 'cut-clients' ? linkMode() : { delayMs: between(20, 400) };
        ensemble.cutClients(server, mode);
        await sleep(holdMs);
        ensemble.heal();
        return `clients of server ${server.id} (${describeLinkMode(mode)})`;
      }
      case 'pause-server': {
        await server.pause();
        await sleep(holdMs);
        await server.resume();
        return `server ${server.id}`;
      }
      case 'kill-server': {
        await server.kill();
        await sleep(holdMs);
        await restartServer(server);
        return `server ${server.id}`;
      }
      case 'stop-member':
      case 'kill-member': {
        const victim = memberVictim(kind);
        if (!victim) return 'no member';
        const wasLeader = victim === leader;
        if (kind === 'stop-member') await victim.stop();
        else await victim.kill();
        await sleep(holdMs);
        // The workload controller's replacement.
        const replacement = await startMember();
        return `${victim.podName}${wasLeader ? ' (the leader)' : ''}, replaced by ${replacement.podName}`;
      }
      case 'pause-member': {
        const victim = memberVictim(kind);
        if (!victim) return 'no member';
        paused.add(victim);
        victim.signal('SIGSTOP');
        await sleep(holdMs);
        victim.signal('SIGCONT');
        paused.delete(victim);
        return `${victim.podName}${victim === leader ? ' (the leader)' : ''}`;
      }
    }
  }

  /** Member faults hit the leader (they are what moves leadership), a pause one time in three another member. */
  function memberVictim(kind: FaultKind): SidecarProcess | undefined {
    const candidates = running().filter((m) => !paused.has(m));
    const leader = leaderMember();
    const onLeader = kind !== 'pause-member' || random() < 2 / 3;
    return leader && !paused.has(leader) && onLeader ? leader : pick(candidates);
  }

  async function restartServer(server: ZooKeeperServer): Promise<void> {
    // A port of the killed JVM can linger for a moment; start() fails fast on it, so retry.
    for (let attempt = 1; ; attempt++) {
      try {
        await server.start();
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        await sleep(500);
      }
    }
  }

  async function healEverything(): Promise<void> {
    ensemble.heal();
    for (const member of paused) member.signal('SIGCONT');
    paused.clear();
    for (const server of ensemble.servers) {
      if (server.paused) await server.resume();
      if (!server.running) await restartServer(server);
    }
    await ensemble.waitForQuorum(60_000);
  }
}

/** The server that holds the session `member` logged last (its `cons` lists the session id). */
export async function serverOfMember(ensemble: ZooKeeperEnsemble, member: SidecarProcess): Promise<ZooKeeperServer | undefined> {
  const last = [...member.logs.matchAll(/"sessionId":"(\d+)"/g)].at(-1)?.[1];
  if (last === undefined) return undefined;
  const hex = BigInt(last).toString(16);
  for (const server of ensemble.servers.filter((s) => s.running && !s.paused)) {
    const cons = await server.fourLetterWord('cons').catch(() => '');
    if (cons.includes(`sid=0x${hex}`)) return server;
  }
  return undefined;
}

/** A failed run, readable: the seed, the violations with their windows, and the faults around them. */
export function describeNemesisRun(result: NemesisResult): string {
  const faults = result.faults.map((f) => `  ${new Date(f.at).toISOString()} ${f.kind} ${f.detail} for ${f.heldMs} ms`).join('\n');
  return `nemesis seed ${result.seed}: ${result.violations.length} violation(s)\n${formatViolations(result.violations)}\nfaults:\n${faults}`;
}
