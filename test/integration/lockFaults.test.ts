import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lockOrder } from '../../zookeeper/lock.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { testAdminCredential, ZooKeeperEnsemble, type ZooKeeperServer } from '../support/zookeeperEnsemble.js';
import { SessionPool } from '../support/zookeeperSessions.js';

// Jepsen style: several `zkleader lock` processes contend for one lock in a loop while a
// fault hits ZooKeeper. Every command appends `start <id> <token> <ms>` when it starts and
// `tick <id> <ms>` every ~10 ms until it ends (after ~300 ms) to one append-only file, with
// times from its own clock. Over the whole history: no two holders' [start, last tick]
// overlap, and tokens strictly increase in start order.
//
// To hit a holder mid-run, the test "stretches" the command that holds: a command whose id
// is in the stretch file keeps ticking (up to 30 s) instead of ending after 300 ms, so the
// fault lands while it runs and its lease must stop it. T = 6 s, --kill-after 1 s.

let ensemble: ZooKeeperEnsemble;
const pool = new SessionPool(() => ensemble.connectString);
const dir = mkdtempSync(join(tmpdir(), 'zkleader-lock-faults-'));
const commandFile = join(dir, 'command.mjs');
const sessionTimeout = '6s';
const sessionTimeoutMs = 6000;

writeFileSync(
  commandFile,
  `import { openSync, readFileSync, writeSync } from 'node:fs';
const [history, id, stretch] = process.argv.slice(2);
const fd = openSync(history, 'a');
const startedAt = Date.now();
writeSync(fd, 'start ' + id + ' ' + process.env.ZKLEADER_LOCK_TOKEN + ' ' + startedAt + '\\n');
const stretched = () => { try { return readFileSync(stretch, 'utf8') === id; } catch { return false; } };
const timer = setInterval(() => {
  const now = Date.now();
  writeSync(fd, 'tick ' + id + ' ' + now + '\\n');
  if (now - startedAt >= 300 && !(now - startedAt < 30000 && stretched())) {
    clearInterval(timer);
    writeSync(fd, 'end ' + id + ' ' + Date.now() + '\\n');
  }
}, 10);
`,
);

interface Holding {
  id: string;
  token: bigint;
  start: number;
  last: number;
  ended: boolean;
}

function readHistory(path: string): Holding[] {
  const holdings = new Map<string, Holding>();
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  for (const line of text.split('\n')) {
    const [kind, id, a, b] = line.split(' ');
    if (!id) continue;
    if (kind === 'start') holdings.set(id, { id, token: BigInt(a as string), start: Number(b), last: Number(b), ended: false });
    const h = holdings.get(id);
    if (!h) continue;
    if (kind === 'tick') h.last = Math.max(h.last, Number(a));
    if (kind === 'end') h.ended = true;
  }
  return [...holdings.values()].sort((x, y) => x.start - y.start);
}

/** Over the whole history: no two holders overlap; tokens strictly increase in start order. */
function expectSafe(history: Holding[]): void {
  const problems: string[] = [];
  for (let i = 1; i < history.length; i++) {
    const prev = history[i - 1] as Holding;
    const cur = history[i] as Holding;
    if (prev.last > cur.start) problems.push(`${prev.id} [${prev.start}, ${prev.last}] overlaps ${cur.id} starting at ${cur.start}`);
    if (!(cur.token > prev.token)) problems.push(`token ${cur.token} of ${cur.id} does not exceed ${prev.token} of ${prev.id}, which started before it`);
  }
  expect(problems).toEqual([]);
}

interface Exit {
  id: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Workers that run `zkleader lock NS/NAME -- node command.mjs` one after another until stopped. */
class Contention {
  readonly history: string;
  readonly stretchFile: string;
  readonly exits: Exit[] = [];
  private stopped = false;
  private readonly running = new Map<string, ChildProcess>();
  private readonly loops: Promise<void>[];

  constructor(
    readonly name: string,
    connectStrings: readonly string[],
  ) {
    this.history = join(dir, `${name}.history`);
    this.stretchFile = join(dir, `${name}.stretch`);
    this.loops = connectStrings.map((cs, w) => this.loop(w, cs));
  }

  private async loop(worker: number, connectString: string): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const id = `${worker}.${i}`;
      const args = ['lock', `jepsen/${this.name}`, '--zookeeper', connectString, '--session-timeout', sessionTimeout, '--kill-after', '1s', '--', process.execPath, commandFile, this.history, id, this.stretchFile];
      const child = spawn(zkleaderBin, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
      this.running.set(id, child);
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
        child.on('error', () => resolve([null, null]));
        child.on('close', (c, s) => resolve([c, s]));
      });
      this.running.delete(id);
      this.exits.push({ id, code, signal, stderr });
      if (code !== 0) await sleep(100);
    }
  }

  holdings(): Holding[] {
    return readHistory(this.history);
  }

  exitOf(id: string): Exit | undefined {
    return this.exits.find((e) => e.id === id);
  }

  /**
   * Until some command holds, then keeps it holding (stretched) past its usual 300 ms;
   * returns its id once it has ticked 400 ms after its start.
   */
  async stretchHolder(timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const current = this.holdings().filter((h) => !h.ended && Date.now() - h.start < 200);
      const candidate = current.at(-1);
      if (candidate) {
        writeFileSync(this.stretchFile, candidate.id);
        const sure = Date.now() + 2000;
        while (Date.now() < sure) {
          const h = this.holdings().find((x) => x.id === candidate.id);
          if (!h || h.ended) break;
          if (h.last - h.start >= 400) return candidate.id;
          await sleep(20);
        }
      }
      await sleep(10);
    }
    throw new Error(`no holder to stretch within ${timeoutMs} ms`);
  }

  unstretch(): void {
    writeFileSync(this.stretchFile, '');
  }

  /** Until a holding by someone other than `not` starts after `after`. */
  async nextHolder(after: number, not: string | undefined, timeoutMs: number): Promise<Holding> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const h = this.holdings().find((x) => x.start > after && x.id !== not);
      if (h) return h;
      await sleep(50);
    }
    throw new Error(`nobody held after ${new Date(after).toISOString()} within ${timeoutMs} ms; exits so far: ${JSON.stringify(this.exits.slice(-8))}`);
  }

  /** Stops the workers: waiters and holders get SIGTERM (holders pass it on). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unstretch();
    for (const child of this.running.values()) child.kill('SIGTERM');
    const all = Promise.all(this.loops);
    const timer = setTimeout(() => this.running.forEach((c) => c.kill('SIGKILL')), 15_000);
    await all;
    clearTimeout(timer);
  }

  /**
   * Exit codes other than 0, those allowed, and stops at the end: 143, or SIGTERM itself
   * for a zkleader stopped while node was still starting (before it handles signals).
   */
  unexpectedExits(allowed: Record<string, readonly number[]> = {}): Exit[] {
    return this.exits.filter((e) => !([0, 143, ...(allowed[e.id] ?? [])].includes(e.code as number) || (e.code === null && e.signal === 'SIGTERM' && this.stopped)));
  }
}

const contentions: Contention[] = [];
function contend(name: string, connectStrings: readonly string[]): Contention {
  const c = new Contention(name, connectStrings);
  contentions.push(c);
  return c;
}

async function allServing(): Promise<void> {
  for (const s of ensemble.servers) {
    if (!s.running) await s.start();
    else if (s.paused) await s.resume();
  }
  await Promise.all(ensemble.servers.map((s) => s.waitServing()));
}

/** The server the session holding `jepsen/<name>` is connected to (its `cons` lists the session). */
async function holderServer(name: string): Promise<ZooKeeperServer> {
  const path = `/zkleader/jepsen/_locks/${name}`;
  // A session of its own: an earlier fault may have ended any older one.
  const admin = await pool.open(testAdminCredential);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const [first] = lockOrder(await admin.getChildren(path));
    const owner = first ? (await admin.exists(`${path}/${first.name}`))?.ephemeralOwner : undefined;
    if (owner) {
      const hex = BigInt(owner).toString(16);
      for (const server of ensemble.servers) {
        const cons = await server.fourLetterWord('cons').catch(() => '');
        if (cons.includes(`sid=0x${hex}`)) return server;
      }
    }
    await sleep(50);
  }
  throw new Error(`no server lists the session holding ${path}`);
}

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 3 });
}, 60_000);

afterAll(async () => {
  await Promise.all(contentions.map((c) => c.stop()));
  pool.closeAll();
  await ensemble?.close();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('no two holders overlap', () => {
  it("the holder's ZooKeeper server paused past T: the holder is stopped (exit 76) before another starts", async () => {
    // One worker per server, each connected to that server alone: the holder cannot move.
    const servers = ensemble.servers;
    const c = contend('paused', [...servers, servers[0] as ZooKeeperServer].map((s) => `127.0.0.1:${s.clientPort}`));
    await c.nextHolder(0, undefined, 30_000);
    const victimId = await c.stretchHolder();
    const victim = servers[Number(victimId.split('.')[0]) % servers.length] as ZooKeeperServer;
    await victim.pause();
    const pausedAt = Date.now();
    let next: Holding;
    try {
      // Someone on another server holds after the holder's session expired.
      next = await c.nextHolder(pausedAt, victimId, 30_000);
      // Were the holder still running, it would tick past the new holder's start.
      await sleep(300);
      expectSafe(c.holdings());
      // Paused for longer than T.
      await sleep(Math.max(0, pausedAt + sessionTimeoutMs + 2000 - Date.now()));
    } finally {
      await victim.resume();
    }
    // The stopped holder's zkleader exits once its server answers again (or gives up on it).
    const victimExit = await until(`zkleader of ${victimId} exits`, () => c.exitOf(victimId), 20_000);
    expect([victimExit.code, victimExit.stderr]).toEqual([76, expect.stringContaining('lock lost')]);
    const stopped = c.holdings().find((h) => h.id === victimId) as Holding;
    expect(stopped.ended).toBe(false);
    expect(stopped.last).toBeLessThanOrEqual(next.start);
    // Everybody goes on after the resume, the paused server's clients too.
    await allServing();
    await c.nextHolder(Date.now(), undefined, 20_000);
    await c.stop();
    expectSafe(c.holdings());
    expect(c.unexpectedExits({ [victimId]: [76] })).toEqual([]);
  }, 100_000);

  it("the holder's ZooKeeper server killed: it keeps the lock on another server or loses it cleanly", async () => {
    await allServing();
    const c = contend('killed', [ensemble.connectString, ensemble.connectString, ensemble.connectString]);
    await c.nextHolder(0, undefined, 30_000);
    const victimId = await c.stretchHolder();
    const victim = await holderServer('killed');
    await victim.kill();
    const killedAt = Date.now();
    // Past two thirds of T: had the holder not renewed its lease elsewhere, it has been stopped.
    await sleep(sessionTimeoutMs);
    c.unstretch();
    const victimExit = await until(`zkleader of ${victimId} exits`, () => c.exitOf(victimId), 20_000);
    expect([0, 76]).toContain(victimExit.code);
    await c.nextHolder(Math.max(killedAt, c.holdings().find((h) => h.id === victimId)?.last ?? 0), victimId, 30_000);
    await sleep(300);
    expectSafe(c.holdings());
    await victim.start();
    await allServing();
    await c.nextHolder(Date.now(), undefined, 20_000);
    await c.stop();
    expectSafe(c.holdings());
    expect(c.unexpectedExits({ [victimId]: [76] })).toEqual([]);
  }, 100_000);

  it('the whole ensemble down past T: the holder exits 76, nobody holds while it is down, another holds after the restart', async () => {
    await allServing();
    const c = contend('down', [ensemble.connectString, ensemble.connectString, ensemble.connectString]);
    await c.nextHolder(0, undefined, 30_000);
    const victimId = await c.stretchHolder();
    const downAt = Date.now();
    // Nothing stops the holder but its lease.
    await Promise.all(ensemble.servers.map((s) => s.kill()));
    const victimExit = await until(`zkleader of ${victimId} exits`, () => c.exitOf(victimId), 20_000);
    expect([victimExit.code, victimExit.stderr]).toEqual([76, expect.stringContaining('lock lost')]);
    await sleep(Math.max(0, downAt + sessionTimeoutMs + 1000 - Date.now()));
    const upAt = Date.now();
    expect(c.holdings().filter((h) => h.start >= downAt)).toEqual([]);
    await Promise.all(ensemble.servers.map((s) => s.start()));
    await Promise.all(ensemble.servers.map((s) => s.waitServing()));
    await c.nextHolder(upAt, victimId, 40_000);
    await c.stop();
    expectSafe(c.holdings());
    expect(c.unexpectedExits({ [victimId]: [76] })).toEqual([]);
  }, 100_000);
});

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
