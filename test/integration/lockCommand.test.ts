import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { digestId, formatCredential, Perms, type DigestCredential } from '../../zookeeper/credentials.js';
import { lockOrder } from '../../zookeeper/lock.js';
import type { ZooKeeperSession } from '../../zookeeper/session.js';
import { ensureTenant, lockRoot } from '../../zookeeper/tenants.js';
import { fourLetterWord } from '../support/fourLetterWord.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { testAdminCredential, ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';
import { SessionPool } from '../support/zookeeperSessions.js';

// `zkleader lock` as an operator runs it: the built CLI, a child process per holder or
// waiter, against a real standalone ZooKeeper. Each test uses its own lock name, so that
// one test's waiters never decide another's outcome. Commands are `sh -c` scripts that
// record what they saw in files of a temp dir; times in those files come from the commands.

let ensemble: ZooKeeperEnsemble;
let admin: ZooKeeperSession;
const pool = new SessionPool(() => ensemble.connectString);
const dir = mkdtempSync(join(tmpdir(), 'zkleader-lock-it-'));
const root = '/lk';
const running = new Set<ChildProcess>();

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Run {
  child: ChildProcess;
  done: Promise<Result>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(zkleaderBin, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

function zkleader(args: string[], env?: NodeJS.ProcessEnv): Promise<Result> {
  return start(args, env).done;
}

interface LockArgs {
  ref: string;
  command: string[];
  flags?: string[];
  root?: string;
}

function lockArgs({ ref, command, flags = [], root: r = root }: LockArgs): string[] {
  return ['lock', ref, '--zookeeper', ensemble.connectString, '--root', r, '--session-timeout', '4s', '--kill-after', '1s', ...flags, '--', ...command];
}

/** `zkleader lock REF ... -- sh -c SCRIPT`. */
function lock(ref: string, script: string, flags: string[] = [], env?: NodeJS.ProcessEnv, r?: string): Run {
  return start(lockArgs({ ref, command: ['sh', '-c', script], flags, ...(r ? { root: r } : {}) }), env);
}

function file(name: string): string {
  return join(dir, name);
}

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

function lockPath(ref: string, r = root): string {
  const [ns, name] = ref.split('/');
  return `${r}/${ns}/_locks/${name}`;
}

/** The waiters' nodes in order (empty when the lock node does not exist). */
async function queue(ref: string, r = root): Promise<string[]> {
  try {
    return lockOrder(await admin.getChildren(lockPath(ref, r))).map((n) => n.name);
  } catch {
    return [];
  }
}

/** Until the lock has exactly `n` waiters (holders included). */
async function queueLength(ref: string, n: number, r = root): Promise<string[]> {
  return until(`${n} nodes in the queue of ${ref}`, async () => {
    const nodes = await queue(ref, r);
    return nodes.length === n ? nodes : undefined;
  });
}

/** Exactly one line on stderr, `zkleader lock: ...`; returns the rest. */
function oneLine(result: Result): string {
  expect(result.stderr.startsWith('zkleader lock: ')).toBe(true);
  expect(result.stderr.endsWith('\n')).toBe(true);
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  return result.stderr.slice('zkleader lock: '.length).trimEnd();
}

/** Made at the end: every command still holding returns (a failed test left it waiting). */
const releaseAll = join(dir, 'release-all');

/** A command that marks that it holds, then waits until `release` exists (at most 60 s). */
function holdUntil(marker: string, release: string, extra = ''): string {
  return `${extra}touch ${marker}; i=0; while [ ! -e ${release} ] && [ ! -e ${releaseAll} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`;
}

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  admin = await pool.open(testAdminCredential);
}, 60_000);

afterAll(async () => {
  writeFileSync(releaseAll, '');
  for (const child of running) child.kill('SIGTERM');
  await Promise.race([Promise.all([...running].map((child) => new Promise((resolve) => child.once('close', resolve)))), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  for (const child of running) child.kill('SIGKILL');
  pool.closeAll();
  await ensemble?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('running the command', () => {
  it("returns the command's exit status and passes its output through", async () => {
    const result = await lock('shop/status', 'echo out; echo err >&2; exit 7').done;
    expect(result).toEqual({ code: 7, signal: null, stdout: 'out\n', stderr: 'err\n' });
    expect((await lock('shop/status', 'true').done).code).toBe(0);
    // Released: nothing is left in the queue.
    expect(await queue('shop/status')).toEqual([]);
  });

  it('gives the command ZKLEADER_LOCK_TOKEN (the node\'s czxid) and ZKLEADER_LOCK_NAME; tokens strictly increase from holder to holder', async () => {
    const tokens: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      const marker = file(`env-held-${i}`);
      const release = file(`env-release-${i}`);
      const run = lock('shop/env', `echo "$ZKLEADER_LOCK_TOKEN $ZKLEADER_LOCK_NAME"; ${holdUntil(marker, release)}`);
      await until('the holder', () => existsSync(marker));
      const [node] = await queue('shop/env');
      const stat = await admin.exists(`${lockPath('shop/env')}/${node}`);
      writeFileSync(release, '');
      const result = await run.done;
      expect([result.code, result.stderr]).toEqual([0, '']);
      const [token, name] = result.stdout.trim().split(' ');
      expect(name).toBe('shop/env');
      expect(token).toMatch(/^[1-9]\d*$/);
      expect(token).toBe(stat?.czxid);
      tokens.push(BigInt(token as string));
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i] as bigint).toBeGreaterThan(tokens[i - 1] as bigint);
  });

  it('a command that is not found: exit 127 with one line, and the lock is released', async () => {
    const result = await zkleader(lockArgs({ ref: 'shop/missing', command: [join(dir, 'no-such-command'), 'arg'] }));
    expect(result.code).toBe(127);
    expect(oneLine(result)).toBe(`shop/missing: cannot run ${JSON.stringify(join(dir, 'no-such-command'))}: no such command`);
    expect(await queue('shop/missing')).toEqual([]);
    // The next one takes it at once.
    expect((await lock('shop/missing', 'exit 0', ['--wait', '0']).done).code).toBe(0);
  });
});

describe('--wait', () => {
  it('--wait 0 on a free lock takes it (a try-lock tries)', async () => {
    const result = await lock('shop/try-free', 'echo ran', ['--wait', '0']).done;
    expect(result).toEqual({ code: 0, signal: null, stdout: 'ran\n', stderr: '' });
  });

  it('--wait 0 while held: exit 75 with one line, and its node is gone', async () => {
    const marker = file('try-held');
    const release = file('try-release');
    const holder = lock('shop/try', holdUntil(marker, release));
    await until('the holder', () => existsSync(marker));
    const [holderNode] = await queue('shop/try');
    const result = await lock('shop/try', `touch ${file('try-ran')}`, ['--wait', '0']).done;
    expect([result.code, result.stdout]).toEqual([75, '']);
    expect(oneLine(result)).toBe('shop/try: not acquired within 0s (held by another)');
    expect(existsSync(file('try-ran'))).toBe(false);
    expect(await queue('shop/try')).toEqual([holderNode]);
    writeFileSync(release, '');
    expect((await holder.done).code).toBe(0);
  });

  it('--wait 1s while held: exit 75, its node is gone; a semaphore says all places are taken', async () => {
    const marker = file('wait1-held');
    const release = file('wait1-release');
    const holder = lock('shop/wait1', holdUntil(marker, release));
    await until('the holder', () => existsSync(marker));
    const result = await lock('shop/wait1', 'echo ran', ['--wait', '1s']).done;
    expect([result.code, result.stdout]).toEqual([75, '']);
    expect(oneLine(result)).toBe('shop/wait1: not acquired within 1s (held by another)');
    expect(await queue('shop/wait1')).toHaveLength(1);
    writeFileSync(release, '');
    expect((await holder.done).code).toBe(0);

    const semMarkers = [file('wait1-sem-0'), file('wait1-sem-1')];
    const semRelease = file('wait1-sem-release');
    const semHolders = semMarkers.map((m) => lock('shop/wait1sem', holdUntil(m, semRelease), ['--holders', '2']));
    await until('both holders', () => semMarkers.every((m) => existsSync(m)));
    const third = await lock('shop/wait1sem', 'echo ran', ['--holders', '2', '--wait', '1s']).done;
    expect([third.code, third.stdout]).toEqual([75, '']);
    expect(oneLine(third)).toBe('shop/wait1sem: not acquired within 1s (all 2 places taken)');
    writeFileSync(semRelease, '');
    for (const h of semHolders) expect((await h.done).code).toBe(0);
  });

  it('a waiter that waited longer than the lease takes over without hammering ZooKeeper', async () => {
    // A waiter's session has no renewal yet when it comes to hold; waiting 3 s (more than
    // 2/3 of T = 4 s) leaves the session's start too old to anchor a lease.
    const marker = file('long-held');
    const release = file('long-release');
    const holder = lock('shop/long', holdUntil(marker, release));
    await until('the holder', () => existsSync(marker));
    const waiter = lock('shop/long', 'echo ran');
    await queueLength('shop/long', 2);
    await sleep(3500);
    const before = packetsReceived(await fourLetterWord(ensemble.servers[0]!.clientPort, 'mntr'));
    writeFileSync(release, '');
    expect((await holder.done).code).toBe(0);
    const result = await waiter.done;
    expect([result.code, result.stdout]).toEqual([0, 'ran\n']);
    const after = packetsReceived(await fourLetterWord(ensemble.servers[0]!.clientPort, 'mntr'));
    // A hand-off is a few requests (sync, children, exists, delete, close, pings); a waiter
    // that loops on its check until a renewal can anchor the lease sends hundreds.
    expect(after - before).toBeLessThan(200);
  });
});

function packetsReceived(mntr: string): number {
  const m = /^zk_packets_received\s+(\d+)$/m.exec(mntr);
  if (!m) throw new Error(`no zk_packets_received in mntr:\n${mntr}`);
  return Number(m[1]);
}

describe('order and places', () => {
  it('is fair: waiters started one after another hold in that order', async () => {
    const marker = file('fair-held');
    const release = file('fair-release');
    const order = file('fair-order');
    const holder = lock('shop/fair', holdUntil(marker, release));
    await until('the holder', () => existsSync(marker));
    const waiters: Run[] = [];
    for (let i = 1; i <= 5; i++) {
      waiters.push(lock('shop/fair', `echo ${i} >> ${order}; sleep 0.05`));
      // The next starts once this one is queued.
      await queueLength('shop/fair', i + 1);
    }
    writeFileSync(release, '');
    expect((await holder.done).code).toBe(0);
    for (const w of waiters) expect((await w.done).code).toBe(0);
    expect(lines(order)).toEqual(['1', '2', '3', '4', '5']);
    expect(await queue('shop/fair')).toEqual([]);
  });

  it('--holders 2: two hold at once, never more, and every one runs', async () => {
    const log = file('sem-log');
    // Each records its start, waits until two have started (so a mutex would never let the
    // first one finish: at most 20 s), holds a little longer and records its end.
    const script = (i: number) =>
      `echo "start ${i} $(date +%s%N)" >> ${log}; ` +
      `n=0; while [ "$(grep -c start ${log})" -lt 2 ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n+1)); done; ` +
      `sleep 0.2; echo "end ${i} $(date +%s%N)" >> ${log}`;
    const runs = Array.from({ length: 6 }, (_, i) => lock('shop/sem', script(i), ['--holders', '2']));
    const results = await Promise.all(runs.map((r) => r.done));
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0]);
    const events = lines(log).map((line) => {
      const [kind, id, ns] = line.split(' ');
      return { kind: kind as 'start' | 'end', id: Number(id), at: BigInt(ns as string) };
    });
    expect(events.filter((e) => e.kind === 'start').map((e) => e.id).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(events.filter((e) => e.kind === 'end').map((e) => e.id).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    // Sweep the history in time order: an end at the same instant as a start comes first.
    const sorted = [...events].sort((a, b) => (a.at === b.at ? (a.kind === 'end' ? -1 : 1) : a.at < b.at ? -1 : 1));
    let now = 0;
    let most = 0;
    for (const e of sorted) {
      now += e.kind === 'start' ? 1 : -1;
      most = Math.max(most, now);
    }
    expect(most).toBe(2);
    // The first two did wait for each other: their ends come after both starts.
    const firstEnd = sorted.findIndex((e) => e.kind === 'end');
    expect(sorted.slice(0, firstEnd).filter((e) => e.kind === 'start')).toHaveLength(2);
  });
});

describe('signals', () => {
  it("SIGTERM while the command runs is passed on to it; zkleader exits with the command's status", async () => {
    const marker = file('sig-held');
    const caught = file('sig-caught');
    const run = lock('shop/sig', `trap 'echo TERM > ${caught}; exit 42' TERM; touch ${marker}; i=0; while [ ! -e ${releaseAll} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`);
    await until('the holder', () => existsSync(marker));
    run.child.kill('SIGTERM');
    const result = await run.done;
    expect([result.code, result.signal]).toEqual([42, null]);
    expect(readFileSync(caught, 'utf8')).toBe('TERM\n');
    expect(await queue('shop/sig')).toEqual([]);
  });

  it('a command killed by a signal: exit 128+N', async () => {
    const result = await lock('shop/sigkill', 'kill -KILL $$').done;
    expect(result.code).toBe(128 + 9);
  });

  it('SIGTERM while waiting: exit 143 with one line, its node is gone, the command never runs', async () => {
    const marker = file('sigwait-held');
    const release = file('sigwait-release');
    const holder = lock('shop/sigwait', holdUntil(marker, release));
    await until('the holder', () => existsSync(marker));
    const [holderNode] = await queue('shop/sigwait');
    const waiter = lock('shop/sigwait', `touch ${file('sigwait-ran')}`);
    await queueLength('shop/sigwait', 2);
    waiter.child.kill('SIGTERM');
    const result = await waiter.done;
    expect([result.code, result.stdout]).toEqual([143, '']);
    expect(oneLine(result)).toBe('shop/sigwait: stopped while waiting (received SIGTERM)');
    expect(await queue('shop/sigwait')).toEqual([holderNode]);
    writeFileSync(release, '');
    expect((await holder.done).code).toBe(0);
    expect(existsSync(file('sigwait-ran'))).toBe(false);
  });

  it('SIGHUP while waiting stops the wait as well: exit 129, its node is gone (not left queued until its session expires)', async () => {
    const marker = file('hupwait-held');
    const release = file('hupwait-release');
    const holder = lock('shop/hupwait', holdUntil(marker, release));
    await until('the holder', () => existsSync(marker));
    const [holderNode] = await queue('shop/hupwait');
    const waiter = lock('shop/hupwait', 'true');
    await queueLength('shop/hupwait', 2);
    waiter.child.kill('SIGHUP');
    const result = await waiter.done;
    expect(result.code).toBe(129);
    expect(oneLine(result)).toBe('shop/hupwait: stopped while waiting (received SIGHUP)');
    expect(await queue('shop/hupwait')).toEqual([holderNode]);
    writeFileSync(release, '');
    expect((await holder.done).code).toBe(0);
  });

  it('ZooKeeper unreachable with --wait 0: exit 75 saying there was no session, not that the lock is held', async () => {
    const result = await zkleader(['lock', 'shop/nozk', '--zookeeper', '127.0.0.1:1', '--session-timeout', '4s', '--kill-after', '1s', '--wait', '0', '--', 'true']);
    expect(result.code).toBe(75);
    expect(oneLine(result)).toBe('shop/nozk: not acquired within 0s (no ZooKeeper session with 127.0.0.1:1 within 4s)');
  }, 30_000);
});


describe('usage errors: exit 2 with one line', () => {
  const zk = () => ['--zookeeper', ensemble.connectString];
  const cases: [string, () => string[], RegExp][] = [
    ['no --', () => ['lock', 'shop/u', ...zk(), 'true'], /^one lock only|^give the command/],
    ['nothing after --', () => ['lock', 'shop/u', ...zk(), '--'], /^give the command to run after --/],
    ['an empty command', () => ['lock', 'shop/u', ...zk(), '--', ''], /^give the command to run after --/],
    ['no lock', () => ['lock', ...zk(), '--', 'true'], /^give the lock as NAMESPACE\/NAME/],
    ['no NAMESPACE/NAME', () => ['lock', 'shop', ...zk(), '--', 'true'], /^expected NAMESPACE\/NAME, got "shop"/],
    ['three parts', () => ['lock', 'shop/a/b', ...zk(), '--', 'true'], /^expected NAMESPACE\/NAME, got "shop\/a\/b"/],
    ['a bad namespace', () => ['lock', 'Shop/a', ...zk(), '--', 'true'], /^"Shop\/a": namespace /],
    ['a bad lock name', () => ['lock', 'shop/A_b', ...zk(), '--', 'true'], /^"shop\/A_b": lock name "A_b" must be/],
    ['an empty lock name', () => ['lock', 'shop/', ...zk(), '--', 'true'], /^"shop\/": lock name "" must be/],
    ['--kill-after a third of T', () => ['lock', 'shop/u', ...zk(), '--session-timeout', '6s', '--kill-after', '2s', '--', 'true'], /^--kill-after 2s must be less than a third of --session-timeout 6s/],
    ['--kill-after above a third of the default T', () => ['lock', 'shop/u', ...zk(), '--kill-after', '7s', '--', 'true'], /^--kill-after 7s must be less than a third of --session-timeout 20s/],
    ['--holders 0', () => ['lock', 'shop/u', ...zk(), '--holders', '0', '--', 'true'], /--holders/],
    ['--holders x', () => ['lock', 'shop/u', ...zk(), '--holders', 'x', '--', 'true'], /--holders/],
    ['--holders -1', () => ['lock', 'shop/u', ...zk(), '--holders', '-1', '--', 'true'], /--holders/],
    ['--holders 1.5', () => ['lock', 'shop/u', ...zk(), '--holders', '1.5', '--', 'true'], /--holders/],
    ['--wait soon', () => ['lock', 'shop/u', ...zk(), '--wait', 'soon', '--', 'true'], /--wait/],
    ['--wait -1s', () => ['lock', 'shop/u', ...zk(), '--wait', '-1s', '--', 'true'], /--wait/],
    ['no --zookeeper', () => ['lock', 'shop/u', '--', 'true'], /--zookeeper is required/],
    ['a missing credential file', () => ['lock', 'shop/u', ...zk(), '--credential-file', join(dir, 'nope'), '--', 'true'], /^--credential-file: /],
  ];
  it.each(cases)('%s', async (_what, args, message) => {
    const result = await zkleader(args());
    expect([result.code, result.stdout]).toEqual([2, '']);
    const line = oneLine(result);
    expect(line).toMatch(message);
  });

  it('--help describes the exit codes', async () => {
    const result = await zkleader(['lock', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Usage: zkleader lock NAMESPACE\/NAME/);
    expect(result.stdout).toMatch(/Exit 75/);
    expect(result.stdout).toMatch(/Exit 76/);
  });
});

describe('a tenant namespace', () => {
  const troot = '/lk-tenant';
  const alpha: DigestCredential = { user: 'zkleader-alpha', password: 'alpha-password' };
  const alphaFile = join(dir, 'alpha.credential');
  const tenantAcl = [{ perms: Perms.ALL, scheme: 'digest', id: digestId(alpha) }];

  beforeAll(async () => {
    writeFileSync(alphaFile, `${formatCredential(alpha)}\n`);
    await lockRoot(admin, troot);
    await ensureTenant(admin, troot, 'alpha', [digestId(alpha)]);
  });

  it('without its credential: exit 1 with the NOAUTH explanation, nothing created', async () => {
    const result = await lock('alpha/job', `touch ${file('tenant-ran')}`, [], {}, troot).done;
    expect([result.code, result.stdout]).toEqual([1, '']);
    const line = oneLine(result);
    expect(line).toContain('NOAUTH');
    expect(line).toContain('tenant');
    expect(line).toContain('--credential-file');
    expect(existsSync(file('tenant-ran'))).toBe(false);
    expect(await admin.exists(`${troot}/alpha/_locks`)).toBeNull();
  });

  it("with its credential: the command runs, and every node the lock made carries the tenant's ACL", async () => {
    const marker = file('tenant-held');
    const release = file('tenant-release');
    const run = lock('alpha/job', holdUntil(marker, release), ['--credential-file', alphaFile], {}, troot);
    await until('the holder', () => existsSync(marker));
    const [node] = await queue('alpha/job', troot);
    for (const path of [`${troot}/alpha/_locks`, `${troot}/alpha/_locks/job`, `${troot}/alpha/_locks/job/${node}`]) {
      expect([path, (await admin.getAcl(path))?.acl]).toEqual([path, tenantAcl]);
    }
    // Now that the lock node exists, one without the credential is refused as well.
    const refused = await lock('alpha/job', 'true', ['--wait', '0'], {}, troot).done;
    expect(refused.code).toBe(1);
    expect(oneLine(refused)).toContain('NOAUTH');
    writeFileSync(release, '');
    expect((await run.done).code).toBe(0);
    // The admin (a superuser) may make a lock's path too: it carries the tenant's ACL, so that members can use it.
    const adminFile = join(dir, 'admin.credential');
    writeFileSync(adminFile, `${formatCredential(testAdminCredential)}\n`);
    const byAdmin = await lock('alpha/admin-made', 'true', ['--credential-file', adminFile], {}, troot).done;
    expect(byAdmin.code).toBe(0);
    expect((await admin.getAcl(`${troot}/alpha/_locks/admin-made`))?.acl).toEqual(tenantAcl);
    expect((await lock('alpha/admin-made', 'echo member', ['--credential-file', alphaFile], {}, troot).done).stdout).toBe('member\n');
    // The credential also comes from the environment.
    const fromEnv = await lock('alpha/job', 'echo ok', [], { ZKLEADER_CREDENTIAL_FILE: alphaFile }, troot).done;
    expect([fromEnv.code, fromEnv.stdout]).toEqual([0, 'ok\n']);
  });
});

/** `wchp` output: path → watching session ids (hex, "0x..."). */
function watchesBySession(wchp: string): Map<string, string[]> {
  const bySession = new Map<string, string[]>();
  let path: string | undefined;
  for (const line of wchp.split('\n')) {
    if (line.startsWith('/')) path = line.trim();
    else if (line.trim().startsWith('0x') && path) {
      const sid = BigInt(line.trim()).toString();
      bySession.set(sid, [...(bySession.get(sid) ?? []), path]);
    }
  }
  return bySession;
}

describe('no herd', () => {
  for (const holders of [1, 3]) {
    it(`--holders ${holders}: each of 5 waiters watches only the ${holders} node(s) just ahead of it, each holder only its own`, async () => {
      const ref = `shop/herd${holders}`;
      const path = lockPath(ref);
      const markers = Array.from({ length: holders }, (_, i) => file(`herd${holders}-held-${i}`));
      const release = file(`herd${holders}-release`);
      const log = file(`herd${holders}-log`);
      const runs = markers.map((m) => lock(ref, holdUntil(m, release), ['--holders', String(holders)]));
      await until('the holders', () => markers.every((m) => existsSync(m)));
      for (let i = 0; i < 5; i++) runs.push(lock(ref, `echo ${i} >> ${log}`, ['--holders', String(holders)]));
      const nodes = await queueLength(ref, holders + 5);
      const owners = new Map<string, string>();
      for (const node of nodes) owners.set(node, (await admin.exists(`${path}/${node}`))?.ephemeralOwner as string);
      // Until every waiter has set its watches (they are set before it waits).
      const expected = (i: number) => (i < holders ? [`${path}/${nodes[i]}`] : nodes.slice(i - holders, i).map((n) => `${path}/${n}`));
      let bySession = new Map<string, string[]>();
      await until('every waiter watching', async () => {
        bySession = watchesBySession(await fourLetterWord(ensemble.servers[0]!.clientPort, 'wchp'));
        return nodes.every((node, i) => (bySession.get(owners.get(node) as string) ?? []).length >= expected(i).length);
      });
      nodes.forEach((node, i) => {
        const watched = (bySession.get(owners.get(node) as string) ?? []).sort();
        expect([i, watched]).toEqual([i, expected(i).sort()]);
        expect(watched.length).toBeLessThanOrEqual(holders);
      });
      writeFileSync(release, '');
      const results = await Promise.all(runs.map((r) => r.done));
      expect(results.map((r) => r.code)).toEqual(results.map(() => 0));
      expect(lines(log).sort()).toEqual(['0', '1', '2', '3', '4']);
    });
  }
});
