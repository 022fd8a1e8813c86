// One election of 1,000 real members (issue 15): LeaderElection objects, each with its own
// ZooKeeper session, spread over a few worker processes, on a real 3-node ensemble.
// Measures (a) graceful failover: the leader stops and every other member publishes (an
// `update` event) the new leader — p50/p99 over FAILOVERS runs; (b) watches per member from
// the servers' `wchc`/`wchp`; (c) idle ZooKeeper bytes per member per second, from the TCP
// counters (tcp_info bytes_acked / bytes_received, read with `ss -tip`) of every socket of the
// server JVMs, over IDLE_SECONDS; the old heartbeat (sync + getChildren every T/4) is computed
// from the same figures plus the measured size of a getChildren and of a get of the election
// node (see idleBefore below).
// Run: npm run bench:election1000 (MEMBERS, WORKERS, FAILOVERS, IDLE_SECONDS, JOIN_SECONDS to override;
// WORKER_NODE_OPTIONS adds Node flags to the workers, e.g. "--cpu-prof --cpu-prof-dir=DIR").
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { ZooKeeperEnsemble, type ZooKeeperServer } from '../test/support/zookeeperEnsemble.js';
import { LeaderElection } from '../zookeeper/election.js';
import { ZooKeeperSession } from '../zookeeper/session.js';

const members = Number(process.env.MEMBERS ?? 1000);
/**
 * Worker processes. The binding is single-threaded (libzookeeper_st, one uv_poll and one timer
 * per session: no thread, one socket per session), so a process could hold all 1,000 sessions.
 * 100 sessions per process by default: on 2 cores, 10 processes of 100 failed over faster than
 * 20 of 50 (fewer processes to schedule), at the price of followers' leases lapsing while the
 * last few hundred joined (see the results).
 */
const workers = Number(process.env.WORKERS ?? Math.ceil(members / 100));
const failovers = Number(process.env.FAILOVERS ?? 7);
const idleSeconds = Number(process.env.IDLE_SECONDS ?? 60);
/** Joins are spread over this long: every member reads every other's node once (n² reads in all). */
const joinSeconds = Number(process.env.JOIN_SECONDS ?? 60);
/** The sidecar's default session timeout: heartbeats every 2.5 s. */
const sessionTimeoutMs = 10_000;
const electionPath = '/zkleader/bench/election1000';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = (): number => performance.timeOrigin + performance.now();

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

// --- worker: a share of the members ---------------------------------------------------------------

interface WorkerMember {
  readonly pod: string;
  readonly election: LeaderElection;
  /** Armed for a failover: the first published outcome naming another leader than `armedOld`. */
  firstNewAt: number | null;
  firstNewLeader: string | null;
}

type Request =
  | { type: 'start'; id: number; connectString: string; pods: string[]; staggerMs: number }
  | { type: 'add'; id: number; pod: string }
  | { type: 'status'; id: number }
  | { type: 'arm'; id: number; oldLeader: string }
  | { type: 'stopLeader'; id: number; pod: string }
  | { type: 'collect'; id: number }
  | { type: 'usage'; id: number }
  | { type: 'exit'; id: number };

interface Status {
  readonly count: number;
  readonly decided: number;
  readonly leaders: Record<string, number>;
  readonly leaderHere: string | null;
  readonly minMembers: number;
  readonly maxMembers: number;
  readonly sessions: string[];
}

async function worker(): Promise<void> {
  const all = new Map<string, WorkerMember>();
  let connectString = '';
  let armedOld: string | null = null;
  const logger = pino({ level: 'warn' });
  const add = (pod: string) => {
    const election = new LeaderElection({
      connectString,
      sessionTimeoutMs,
      electionPath,
      self: { pod, ip: null, uid: null, namespace: 'bench', startedAt: new Date().toISOString() },
      logger: logger.child({ pod }),
    });
    const member: WorkerMember = { pod, election, firstNewAt: null, firstNewLeader: null };
    election.on('update', (snapshot, changed) => {
      if (!changed || armedOld === null || member.firstNewAt !== null) return;
      if (snapshot.state === 'unknown' || !snapshot.leader || snapshot.leader.pod === armedOld) return;
      member.firstNewAt = now();
      member.firstNewLeader = snapshot.leader.pod;
    });
    all.set(pod, member);
    election.start();
  };
  const answer = async (req: Request): Promise<unknown> => {
    switch (req.type) {
      case 'start':
        connectString = req.connectString;
        for (const pod of req.pods) {
          add(pod);
          await sleep(req.staggerMs);
        }
        return null;
      case 'add':
        add(req.pod);
        return null;
      case 'status': {
        const leaders: Record<string, number> = {};
        let decided = 0;
        let minMembers = Infinity;
        let maxMembers = 0;
        let leaderHere: string | null = null;
        const sessions: string[] = [];
        for (const m of all.values()) {
          const s = m.election.current;
          const id = m.election.sessionId;
          if (id) sessions.push(BigInt(id).toString(16));
          if (!s || s.state === 'unknown' || !s.leader) continue;
          decided++;
          leaders[s.leader.pod] = (leaders[s.leader.pod] ?? 0) + 1;
          minMembers = Math.min(minMembers, s.members.length);
          maxMembers = Math.max(maxMembers, s.members.length);
          if (s.isLeader) leaderHere = m.pod;
        }
        const status: Status = { count: all.size, decided, leaders, leaderHere, minMembers, maxMembers, sessions };
        return status;
      }
      case 'arm':
        armedOld = req.oldLeader;
        for (const m of all.values()) {
          m.firstNewAt = null;
          m.firstNewLeader = null;
        }
        return null;
      case 'stopLeader': {
        const m = all.get(req.pod);
        if (!m) throw new Error(`no member ${req.pod} here`);
        all.delete(req.pod);
        const t0 = now();
        await m.election.close();
        return { t0, closedMs: now() - t0 };
      }
      case 'collect': {
        const times: { pod: string; at: number; leader: string }[] = [];
        let pending = 0;
        for (const m of all.values()) {
          if (m.firstNewAt === null || m.firstNewLeader === null) pending++;
          else times.push({ pod: m.pod, at: m.firstNewAt, leader: m.firstNewLeader });
        }
        return { times, pending };
      }
      case 'usage':
        return { cpu: process.cpuUsage(), rssMiB: process.memoryUsage().rss / 2 ** 20 };
      case 'exit':
        await Promise.all([...all.values()].map((m) => m.election.close()));
        setImmediate(() => process.exit(0));
        return null;
    }
  };
  process.on('message', (req: Request) => {
    answer(req).then(
      (result) => process.send?.({ id: req.id, result }),
      (err: Error) => process.send?.({ id: req.id, error: err.message }),
    );
  });
}

// --- the parent: ensemble, workers, measurements ------------------------------------------------------

class Worker {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  constructor(readonly child: ChildProcess) {
    child.on('message', (msg: { id: number; result?: unknown; error?: string }) => {
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.error !== undefined) w?.reject(new Error(msg.error));
      else w?.resolve(msg.result);
    });
    child.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`worker exited (${code})`));
    });
  }
  ask<T>(req: Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...req, id });
    });
  }
}

async function statuses(pool: readonly Worker[]): Promise<Status[]> {
  return Promise.all(pool.map((w) => w.ask<Status>({ type: 'status' })));
}

/** Every member decided, on one leader, each listing `total` members. Returns the leader and the worker that has it. */
async function untilSettled(pool: readonly Worker[], total: number, timeoutMs: number): Promise<{ leader: string; worker: Worker }> {
  const deadline = Date.now() + timeoutMs;
  let lastReport = Date.now();
  for (;;) {
    const all = await statuses(pool);
    const count = all.reduce((n, s) => n + s.count, 0);
    const decided = all.reduce((n, s) => n + s.decided, 0);
    const leaders = new Set(all.flatMap((s) => Object.keys(s.leaders)));
    const min = Math.min(...all.map((s) => s.minMembers));
    const max = Math.max(...all.map((s) => s.maxMembers));
    const here = all.findIndex((s) => s.leaderHere !== null);
    const last = `${count} members, ${decided} decided, leaders ${[...leaders].join(',')}, member lists ${min}..${max}`;
    if (count === total && decided === total && leaders.size === 1 && min === total && max === total && here >= 0) {
      return { leader: all[here]?.leaderHere as string, worker: pool[here] as Worker };
    }
    if (Date.now() > deadline) throw new Error(`not settled within ${timeoutMs} ms: ${last}`);
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      console.error(`${new Date().toISOString()} ${last}; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
    }
    await sleep(250);
  }
}

/** The 127.0.0.1 TCP sockets of the given processes with their byte counters (tcp_info). */
interface Socket {
  readonly pid: number;
  readonly localPort: number;
  readonly peerPort: number;
  readonly acked: number;
  readonly received: number;
}

function sockets(pids: ReadonlySet<number>): Socket[] {
  const out: Socket[] = [];
  const text = execFileSync('ss', ['-tinpH', 'state', 'established'], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  let current: { pid: number; localPort: number; peerPort: number } | null = null;
  for (const line of text.split('\n')) {
    if (line && !/^\s/.test(line)) {
      const addr = /\S+:(\d+)\s+\S+:(\d+)/.exec(line);
      // A socket of the C client is inherited by processes forked later (no CLOEXEC): several users.
      const pid = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])).find((p) => pids.has(p));
      current = addr && pid !== undefined ? { pid, localPort: Number(addr[1]), peerPort: Number(addr[2]) } : null;
    } else if (current && line.trim()) {
      const acked = /bytes_acked:(\d+)/.exec(line);
      const received = /bytes_received:(\d+)/.exec(line);
      out.push({ ...current, acked: Number(acked?.[1] ?? 0), received: Number(received?.[1] ?? 0) });
      current = null;
    }
  }
  return out;
}

interface Traffic {
  /** Bytes the servers sent to clients (answers, watch events). */
  readonly clientOut: number;
  /** Bytes the servers received from clients (requests, pings). */
  readonly clientIn: number;
  /** Bytes between the servers (quorum and election ports), each byte counted once (by its sender). */
  readonly quorum: number;
  readonly clientSockets: number;
}

function traffic(servers: readonly ZooKeeperServer[]): Map<string, Socket> & { clientPorts: Set<number> } {
  const pids = new Set(servers.flatMap((s) => (s.pid ? [s.pid] : [])));
  const map = new Map<string, Socket>() as Map<string, Socket> & { clientPorts: Set<number> };
  map.clientPorts = new Set(servers.map((s) => s.clientPort));
  for (const s of sockets(pids)) map.set(`${s.pid}:${s.localPort}:${s.peerPort}`, s);
  return map;
}

/** What flowed between two readings, over the sockets present in both (none should come or go while idle). */
function trafficBetween(a: ReturnType<typeof traffic>, b: ReturnType<typeof traffic>, excludePeers: ReadonlySet<number>): Traffic {
  let clientOut = 0;
  let clientIn = 0;
  let quorum = 0;
  let clientSockets = 0;
  for (const [key, end] of b) {
    const start = a.get(key);
    if (!start || excludePeers.has(end.peerPort)) continue;
    if (a.clientPorts.has(end.localPort)) {
      clientSockets++;
      clientOut += end.acked - start.acked;
      clientIn += end.received - start.received;
    } else quorum += end.acked - start.acked;
  }
  return { clientOut, clientIn, quorum, clientSockets };
}

/** Bytes that flowed on this process's own sockets to the servers (the probe session's). */
function ownTraffic(servers: readonly ZooKeeperServer[]): { out: number; in: number; ports: Set<number> } {
  const ports = new Set(servers.map((s) => s.clientPort));
  const own = sockets(new Set([process.pid])).filter((s) => ports.has(s.peerPort));
  return { out: own.reduce((n, s) => n + s.acked, 0), in: own.reduce((n, s) => n + s.received, 0), ports: new Set(own.map((s) => s.localPort)) };
}

/** `wchc` of every server: watched paths per session (hex id). */
async function watchesPerSession(servers: readonly ZooKeeperServer[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const server of servers) {
    const text = await server.fourLetterWord('wchc', 10_000);
    let session: string | null = null;
    for (const line of text.split('\n')) {
      if (/^0x[0-9a-f]+/i.test(line)) {
        session = line.trim().slice(2).toLowerCase();
        if (!out.has(session)) out.set(session, []);
      } else if (session && line.trim().startsWith('/')) out.get(session)?.push(line.trim());
    }
  }
  return out;
}

/** `wchp` of every server: sessions per watched path. */
async function sessionsPerPath(servers: readonly ZooKeeperServer[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const server of servers) {
    const text = await server.fourLetterWord('wchp', 10_000);
    let path: string | null = null;
    for (const line of text.split('\n')) {
      if (line.startsWith('/')) path = line.trim();
      else if (path && /^\s+0x/i.test(line)) out.set(path, (out.get(path) ?? 0) + 1);
    }
  }
  return out;
}

function mntr(text: string, key: string): number {
  return Number(new RegExp(`^${key}\\s+(\\S+)`, 'm').exec(text)?.[1] ?? NaN);
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(2);

async function main(): Promise<void> {
  const lines: string[] = [];
  const say = (line = '') => {
    lines.push(line);
    console.log(line);
  };
  const fdLimit = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  const load0 = readFileSync('/proc/loadavg', 'utf8').trim();
  const startedAt = Date.now();
  const ensemble = await ZooKeeperEnsemble.start({ size: 3 });
  const pool: Worker[] = [];
  try {
    // ZooKeeper accepts 60 connections per client address by default (maxClientCnxns): too
    // few for 1,000 sessions from 127.0.0.1. Lift it and restart each server (no client yet).
    for (const server of ensemble.servers) {
      appendFileSync(join(ensemble.dir, `server-${server.id}`, 'zoo.cfg'), 'maxClientCnxns=0\n');
      await server.restart();
    }
    await Promise.all(ensemble.servers.map((s) => s.waitServing(60_000)));
    const modulePath = process.argv[1] as string;
    for (let w = 0; w < workers; w++) {
      const child = fork(modulePath, ['worker'], { execArgv: ['--max-old-space-size=1024', ...(process.env.WORKER_NODE_OPTIONS ?? '').split(' ').filter(Boolean)], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      pool.push(new Worker(child));
    }
    // The bench's own session (after the fork: the workers do not inherit its socket).
    const probe = new ZooKeeperSession({ connectString: ensemble.connectString, sessionTimeoutMs });
    await new Promise<void>((resolve) => probe.once('connected', () => resolve()));
    await probe.ensurePath(electionPath);
    let nextPod = 0;
    const shares: string[][] = pool.map(() => []);
    for (let i = 0; i < members; i++) shares[i % workers]?.push(`m-${String(nextPod++).padStart(4, '0')}`);
    // The members join over JOIN_SECONDS (each worker starts its share one after the other).
    const staggerMs = Math.max(1, Math.floor((joinSeconds * 1000 * workers) / members));
    const joinStart = Date.now();
    await Promise.all(pool.map((w, i) => w.ask({ type: 'start', connectString: ensemble.connectString, pods: shares[i] ?? [], staggerMs })));
    let { leader, worker: leaderWorker } = await untilSettled(pool, members, joinSeconds * 1000 + 300_000);
    const settleSeconds = (Date.now() - joinStart) / 1000;
    console.error(`settled: ${members} members agree on ${leader} after ${settleSeconds.toFixed(1)} s`);
    await sleep(sessionTimeoutMs);

    // (b) watches
    const sessionIds = new Set((await statuses(pool)).flatMap((s) => s.sessions));
    const watches = await watchesPerSession(ensemble.servers);
    const perMember = [...sessionIds].map((id) => watches.get(id)?.length ?? 0);
    const byPath = await sessionsPerPath(ensemble.servers);
    const totalWatches = perMember.reduce((a, b) => a + b, 0);
    const watchHistogram = new Map<number, number>();
    for (const n of perMember) watchHistogram.set(n, (watchHistogram.get(n) ?? 0) + 1);
    const busiestPath = [...byPath.entries()].sort((a, b) => b[1] - a[1])[0];

    // (c) idle traffic
    const jvmTicks0 = ensemble.servers.map((s) => (s.pid ? cpuTicks(s.pid) : 0));
    const usage0 = await Promise.all(pool.map((w) => w.ask<{ cpu: NodeJS.CpuUsage; rssMiB: number }>({ type: 'usage' })));
    const mntr0 = await Promise.all(ensemble.servers.map((s) => s.fourLetterWord('mntr')));
    const t0 = traffic(ensemble.servers);
    const idleStart = Date.now();
    await sleep(idleSeconds * 1000);
    const t1 = traffic(ensemble.servers);
    const idleMs = Date.now() - idleStart;
    const mntr1 = await Promise.all(ensemble.servers.map((s) => s.fourLetterWord('mntr')));
    const usage1 = await Promise.all(pool.map((w) => w.ask<{ cpu: NodeJS.CpuUsage; rssMiB: number }>({ type: 'usage' })));
    const jvmTicks1 = ensemble.servers.map((s) => (s.pid ? cpuTicks(s.pid) : 0));
    const idle = trafficBetween(t0, t1, ownTraffic(ensemble.servers).ports);
    const packetsIn = mntr1.reduce((n, m, i) => n + mntr(m, 'zk_packets_received') - mntr(mntr0[i] ?? '', 'zk_packets_received'), 0);
    const packetsOut = mntr1.reduce((n, m, i) => n + mntr(m, 'zk_packets_sent') - mntr(mntr0[i] ?? '', 'zk_packets_sent'), 0);
    const perSecond = (bytes: number) => bytes / members / (idleMs / 1000);
    const stillSettled = await untilSettled(pool, members, 5000);

    // The old heartbeat (sync + getChildren) differs from the new (sync + get of the election
    // node) only in the read: measure both reads' bytes on the probe's own socket.
    const reads = 20;
    const own0 = ownTraffic(ensemble.servers);
    for (let i = 0; i < reads; i++) await probe.getChildren(electionPath);
    const own1 = ownTraffic(ensemble.servers);
    for (let i = 0; i < reads; i++) await probe.get(electionPath);
    const own2 = ownTraffic(ensemble.servers);
    const listBytes = (own1.in - own0.in + own1.out - own0.out) / reads;
    const getBytes = (own2.in - own1.in + own2.out - own1.out) / reads;
    const heartbeatsPerSecond = 1000 / (sessionTimeoutMs / 4);
    const newPerMember = perSecond(idle.clientOut + idle.clientIn);
    const beforePerMember = newPerMember + (listBytes - getBytes) * heartbeatsPerSecond;

    // (a) failovers: the leader stops gracefully; time until every other member published the new one.
    const runs: { all: number; perMember: number[]; newLeader: string; closeMs: number; workerCpu: number; jvmCpu: number }[] = [];
    const cpuNow = async () => {
      const usage = await Promise.all(pool.map((w) => w.ask<{ cpu: NodeJS.CpuUsage }>({ type: 'usage' })));
      const jvm = ensemble.servers.reduce((n, s) => n + (s.pid ? cpuTicks(s.pid) : 0), 0) / 100;
      return { worker: usage.reduce((n, u) => n + u.cpu.user + u.cpu.system, 0) / 1e6, jvm };
    };
    for (let run = 0; run < failovers; run++) {
      await Promise.all(pool.map((w) => w.ask({ type: 'arm', oldLeader: leader })));
      const cpu0 = await cpuNow();
      const { t0: stoppedAt, closedMs } = await leaderWorker.ask<{ t0: number; closedMs: number }>({ type: 'stopLeader', pod: leader });
      const deadline = Date.now() + 30_000;
      let collected: { times: { pod: string; at: number; leader: string }[]; pending: number }[];
      for (;;) {
        collected = await Promise.all(pool.map((w) => w.ask<{ times: { pod: string; at: number; leader: string }[]; pending: number }>({ type: 'collect' })));
        if (collected.every((c) => c.pending === 0)) break;
        if (Date.now() > deadline) throw new Error(`failover ${run}: ${collected.reduce((n, c) => n + c.pending, 0)} members never published a new leader`);
        await sleep(20);
      }
      const cpu1 = await cpuNow();
      const times = collected.flatMap((c) => c.times);
      const named = new Set(times.map((t) => t.leader));
      if (named.size !== 1) throw new Error(`failover ${run}: members named ${[...named].join(', ')}`);
      const delays = times.map((t) => t.at - stoppedAt);
      runs.push({ all: Math.max(...delays), perMember: delays, newLeader: [...named][0] as string, closeMs: closedMs, workerCpu: cpu1.worker - cpu0.worker, jvmCpu: cpu1.jvm - cpu0.jvm });
      console.error(`failover ${run}: ${times.length} members named ${[...named][0]} within ${Math.max(...delays).toFixed(1)} ms (p50 ${percentile(delays, 50).toFixed(1)} ms)`);
      // Back to `members`: the stopped member's replacement joins at the end of the queue.
      await leaderWorker.ask({ type: 'add', pod: `m-${String(nextPod++).padStart(4, '0')}` });
      ({ leader, worker: leaderWorker } = await untilSettled(pool, members, 120_000));
      await sleep(sessionTimeoutMs / 2);
    }
    const watchesAfter = await watchesPerSession(ensemble.servers);
    const sessionsAfter = (await statuses(pool)).flatMap((s) => s.sessions);
    const perMemberAfter = sessionsAfter.map((id) => watchesAfter.get(id)?.length ?? 0);
    probe.close();
    const load1 = readFileSync('/proc/loadavg', 'utf8').trim();

    const allTimes = runs.map((r) => r.all);
    const pooled = runs.flatMap((r) => r.perMember);
    const workerCpu = usage1.reduce((n, u, i) => n + (u.cpu.user + u.cpu.system - ((usage0[i]?.cpu.user ?? 0) + (usage0[i]?.cpu.system ?? 0))), 0) / 1e6;
    const jvmCpu = jvmTicks1.reduce((n, t, i) => n + t - (jvmTicks0[i] ?? 0), 0) / 100;
    say(`### One election of ${members} members (bench/election1000.ts)`);
    say();
    say(`${members} LeaderElection members, each with its own ZooKeeper session, in ${workers} worker processes (${Math.ceil(members / workers)} each); a 3-node ensemble (test support, tickTime 200 ms, maxClientCnxns lifted); session timeout ${sessionTimeoutMs / 1000} s (heartbeat every ${sessionTimeoutMs / 4000} s). ulimit -n ${fdLimit}. Joins spread over ${joinSeconds} s. Load average at start ${load0}, at end ${load1}. ${members} members joined and agreed in ${settleSeconds.toFixed(1)} s.`);
    say();
    say(`**(a) Graceful failover**, ${runs.length} runs: the leader's close() (step down, delete its node, close its session) until all ${members - 1} others have published (an 'update' event) the new leader.`);
    say();
    say('| | p50 | p99 | max |');
    say('|---|---|---|---|');
    say(`| all ${members - 1} named the new leader (per run) | ${percentile(allTimes, 50).toFixed(1)} ms | ${percentile(allTimes, 99).toFixed(1)} ms | ${Math.max(...allTimes).toFixed(1)} ms |`);
    say(`| one member named it (${pooled.length} member-runs) | ${percentile(pooled, 50).toFixed(1)} ms | ${percentile(pooled, 99).toFixed(1)} ms | ${Math.max(...pooled).toFixed(1)} ms |`);
    say();
    say(`Runs (all named, ms): ${allTimes.map((t) => t.toFixed(1)).join(', ')}; the leader's close() took ${runs.map((r) => r.closeMs.toFixed(1)).join(', ')} ms. CPU per failover (from the arm to the last member's report): workers ${runs.map((r) => r.workerCpu.toFixed(2)).join(', ')} s, JVMs ${runs.map((r) => r.jvmCpu.toFixed(2)).join(', ')} s.`);
    say();
    say(`**(b) Watches** (wchc of the 3 servers, ${sessionIds.size} member sessions): ${totalWatches} watches, ${(totalWatches / sessionIds.size).toFixed(2)} per member, at most ${Math.max(...perMember)}; members by watch count: ${[...watchHistogram.entries()].sort((a, b) => a[0] - b[0]).map(([n, c]) => `${n}: ${c}`).join(', ')}. wchp: ${byPath.size} watched paths; the most watched, ${busiestPath?.[0] ?? '-'}, by ${busiestPath?.[1] ?? 0} sessions (the leader's node: every follower learns the leader from it). After the ${runs.length} failovers and rejoins: ${perMemberAfter.reduce((a, b) => a + b, 0)} watches for ${sessionsAfter.length} sessions, at most ${Math.max(...perMemberAfter)} per member.`);
    say();
    say(`**(c) Idle ZooKeeper traffic**, ${(idleMs / 1000).toFixed(0)} s with nothing changing (${idle.clientSockets} client connections), from the TCP byte counters of every socket of the server JVMs (ss -tip: bytes_acked sent, bytes_received), TCP payload only:`);
    say();
    say('| | per member | whole election |');
    say('|---|---|---|');
    say(`| servers → members (answers) | ${perSecond(idle.clientOut).toFixed(1)} B/s | ${kib(idle.clientOut / (idleMs / 1000))} KiB/s |`);
    say(`| members → servers (requests, pings) | ${perSecond(idle.clientIn).toFixed(1)} B/s | ${kib(idle.clientIn / (idleMs / 1000))} KiB/s |`);
    say(`| between the servers (syncs forwarded to the leader, pings) | ${perSecond(idle.quorum).toFixed(1)} B/s | ${kib(idle.quorum / (idleMs / 1000))} KiB/s |`);
    say(`| **client traffic, this heartbeat (sync + get of the election node)** | **${newPerMember.toFixed(1)} B/s** | ${kib(newPerMember * members)} KiB/s |`);
    say(`| client traffic, the old heartbeat (sync + getChildren), computed | ${kib(beforePerMember)} KiB/s | ${(beforePerMember * members / 2 ** 20).toFixed(1)} MiB/s |`);
    say();
    say(`The old figure is computed, not run: the two heartbeats differ only in their read, so old = measured + (getChildren − get) × ${heartbeatsPerSecond} heartbeats/s, with a getChildren of the ${members}-child election node measured at ${listBytes.toFixed(0)} B on the wire (request + answer, TCP payload) and a get of it at ${getBytes.toFixed(0)} B (each the mean of ${reads} on the bench's own session). mntr: ${(packetsIn / members / (idleMs / 1000)).toFixed(2)} packets/s received and ${(packetsOut / members / (idleMs / 1000)).toFixed(2)} sent per member. CPU while idle: the ${workers} workers ${(workerCpu / (idleMs / 1000) * 100).toFixed(1)} % of a core, the 3 JVMs ${(jvmCpu / (idleMs / 1000) * 100).toFixed(1)} %; worker RSS ${usage1.map((u) => u.rssMiB.toFixed(0)).join(' + ')} MiB. Still one leader after the idle window: ${stillSettled.leader}.`);
    say();
    say(`Bench wall time ${((Date.now() - startedAt) / 1000).toFixed(0)} s.`);
    if (process.env.RESULTS_FILE) appendFileSync(process.env.RESULTS_FILE, `${lines.join('\n')}\n`);
  } finally {
    await Promise.all(pool.map((w) => w.ask({ type: 'exit' }).catch(() => undefined)));
    await sleep(500);
    for (const w of pool) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await ensemble.close();
  }
}

if (process.argv[2] === 'worker') {
  void worker();
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
