import { spawn, type ChildProcess } from 'node:child_process';
import { constants, hostname } from 'node:os';
import type { Command, CommandContext } from '../cli/command.js';
import { formatDuration, parseBoundedDuration, parseDuration, parseSessionTimeout } from '../cli/duration.js';
import { defaultedString, formatHelp, optionalString, parseFlags, requiredString, UsageError, type FlagValues } from '../cli/flags.js';
import { readCredentialFlag } from '../cli/credentialFlag.js';
import { isDns1123Subdomain, parseDnsLabel, parseZnodePath, parseZooKeeperConnectString } from '../cli/valueSyntax.js';
import { DistributedLock, LockError } from '../zookeeper/lock.js';

/** Exit codes of `zkleader lock` besides the command's own (documented in the README). */
export const EXIT_NOT_ACQUIRED = 75;
export const EXIT_LOCK_LOST = 76;

const DEFAULT_LOCK_SESSION_TIMEOUT = '20s';

/** `--wait`: `0` (one try) or a duration. */
export function parseWait(raw: string): number {
  if (raw.trim() === '0') return 0;
  return parseDuration(raw);
}

export const lockFlags = {
  zookeeper: requiredString({ description: 'ZooKeeper connect string', valueName: 'H:P[,..][/chroot]', parse: parseZooKeeperConnectString }),
  holders: defaultedString({
    description: 'how many may hold at once (1: a mutex; N: a semaphore)',
    valueName: 'N',
    default: '1',
    parse: (raw) => {
      const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
      if (!(n >= 1)) throw new Error(`expected a whole number from 1 to 9999, got ${JSON.stringify(raw)}`);
      return n;
    },
  }),
  wait: optionalString({ description: 'give up (exit 75) when not acquired within D; 0: try once (default: wait without end)', valueName: 'D', parse: parseWait }),
  'session-timeout': defaultedString({
    description: 'ZooKeeper session timeout T: the lock is free T after its holder is cut off; the command is stopped before that',
    valueName: 'T',
    default: DEFAULT_LOCK_SESSION_TIMEOUT,
    parse: parseSessionTimeout,
  }),
  'kill-after': defaultedString({
    description: 'when the lock is lost: SIGKILL this long after SIGTERM (less than a third of T)',
    valueName: 'D',
    default: '5s',
    parse: (raw) => parseBoundedDuration(raw, 0, 60_000),
  }),
  'credential-file': optionalString({ description: "the namespace's credential (user:password) when it is a tenant", valueName: 'F' }),
  root: defaultedString({ description: 'ZooKeeper root of all namespaces', valueName: 'PATH', default: '/zkleader', parse: parseZnodePath }),
};

const usage = 'zkleader lock NAMESPACE/NAME --zookeeper H:P[,..] [--holders N] [--wait D] [--session-timeout T] [--kill-after D] [--credential-file F] -- COMMAND [ARG...]';

const description = [
  'Runs COMMAND while holding the lock NAMESPACE/NAME (with --holders N: one of N places of a',
  'semaphore), first come first served. COMMAND gets ZKLEADER_LOCK_TOKEN (a fencing token that',
  'only grows from holder to holder) and ZKLEADER_LOCK_NAME; signals are passed on to it; the lock',
  'is released when it exits, and zkleader exits with its status (128+N when killed by signal N).',
  'Exit 75: not acquired within --wait. Exit 76: the lock was lost while COMMAND ran — ZooKeeper',
  'cut off for two thirds of T without a renewal, the session expired, or the node was deleted — so',
  'COMMAND got SIGTERM, and SIGKILL --kill-after later (its process group), before anyone else can',
  'hold it. Exit 2: usage errors; 1: ZooKeeper refused (a tenant without its credential).',
].join('\n');

/** `NAMESPACE/NAME`: a namespace name and a lock name (DNS-1123 subdomain, ≤ 253). */
export function parseLockRef(raw: string): { namespace: string; name: string } {
  const [namespace, name, ...rest] = raw.split('/');
  if (namespace === undefined || name === undefined || rest.length > 0) throw new UsageError(`expected NAMESPACE/NAME, got ${JSON.stringify(raw)}`);
  try {
    parseDnsLabel(namespace);
  } catch (err) {
    throw new UsageError(`${JSON.stringify(raw)}: namespace ${(err as Error).message}`);
  }
  if (!isDns1123Subdomain(name)) {
    throw new UsageError(`${JSON.stringify(raw)}: lock name ${JSON.stringify(name)} must be lower-case letters, digits, "-" and "." (at most 253)`);
  }
  return { namespace, name };
}

function signalNumber(signal: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[signal] ?? 15;
}

/** Signals passed on to the command's process group (SIGTERM and SIGINT included). */
const forwarded: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

async function run(flags: FlagValues<typeof lockFlags>, refRaw: string, command: string[], ctx: CommandContext): Promise<number> {
  const ref = parseLockRef(refRaw);
  const timeout = flags['session-timeout'];
  if (flags['kill-after'] * 3 >= timeout) {
    throw new UsageError(
      `--kill-after ${formatDuration(flags['kill-after'])} must be less than a third of --session-timeout ${formatDuration(timeout)}: the command must be dead before the session can expire and another holder start`,
    );
  }
  const credential = await readCredentialFlag(flags['credential-file']);
  const name = `${ref.namespace}/${ref.name}`;
  const say = (line: string) => ctx.stderr.write(`zkleader lock: ${line}\n`);
  const lock = new DistributedLock({
    connectString: flags.zookeeper,
    sessionTimeoutMs: timeout,
    lockPath: `${flags.root}/${ref.namespace}/_locks/${ref.name}`,
    holders: flags.holders,
    owner: { host: hostname(), pid: String(process.pid), startedAt: new Date().toISOString() },
    ...(credential ? { credential } : {}),
  });

  // Waiting: any signal we pass on later stops the wait instead (SIGTERM / SIGINT through
  // ctx.signal), and our node goes: a SIGHUP must not leave it queued until its session expires.
  const waiting = new AbortController();
  const stopWaiting = (signal: NodeJS.Signals) => waiting.abort(new Error(`received ${signal}`));
  const onCtxAbort = () => waiting.abort(ctx.signal.reason);
  if (ctx.signal.aborted) onCtxAbort();
  ctx.signal.addEventListener('abort', onCtxAbort);
  for (const s of forwarded) if (s !== 'SIGTERM' && s !== 'SIGINT') process.on(s, stopWaiting);
  let holding;
  try {
    holding = await lock.acquire(flags.wait ?? null, waiting.signal);
  } catch (err) {
    await lock.release();
    if (err instanceof LockError) {
      say(`${name}: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    ctx.signal.removeEventListener('abort', onCtxAbort);
    for (const s of forwarded) process.off(s, stopWaiting);
  }
  if (!holding) {
    await lock.release();
    if (waiting.signal.aborted) {
      const reason = String((waiting.signal.reason as Error | undefined)?.message ?? '');
      const signal = forwarded.find((s) => reason.endsWith(s)) ?? 'SIGTERM';
      say(`${name}: stopped while waiting (${reason || 'signal'})`);
      return 128 + signalNumber(signal);
    }
    const why = !lock.queueSeen
      ? `no ZooKeeper session with ${flags.zookeeper} within ${formatDuration(Math.max(flags.wait ?? 0, timeout))}`
      : flags.holders === 1
        ? 'held by another'
        : `all ${flags.holders} places taken`;
    say(`${name}: not acquired within ${formatDuration(flags.wait ?? 0)} (${why})`);
    return EXIT_NOT_ACQUIRED;
  }

  const [file, ...args] = command as [string, ...string[]];
  let child: ChildProcess;
  try {
    // Its own process group: the lease rule stops the command and whatever it started.
    child = spawn(file, args, {
      stdio: 'inherit',
      detached: true,
      env: { ...ctx.env, ZKLEADER_LOCK_TOKEN: holding.token, ZKLEADER_LOCK_NAME: name },
    });
  } catch (err) {
    await lock.release();
    say(`${name}: cannot run ${JSON.stringify(file)}: ${(err as Error).message}`);
    return 126;
  }
  const group = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  const onSignal = (signal: NodeJS.Signals) => group(signal);
  for (const s of forwarded) process.on(s, onSignal);

  let lost: string | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  lock.on('lost', (reason) => {
    lost = reason;
    say(`${name}: lock lost (${reason}); stopping the command: SIGTERM now, SIGKILL in ${formatDuration(flags['kill-after'])}`);
    group('SIGTERM');
    killTimer = setTimeout(() => group('SIGKILL'), flags['kill-after']);
  });

  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException }>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  for (const s of forwarded) process.off(s, onSignal);
  if (lost !== null && killTimer) {
    // Whatever the command left in its group goes too, before anyone else may hold the lock.
    clearTimeout(killTimer);
    group('SIGKILL');
  }
  await lock.release();
  if ('error' in outcome) {
    const code = outcome.error.code === 'ENOENT' ? 127 : 126;
    say(`${name}: cannot run ${JSON.stringify(file)}: ${outcome.error.code === 'ENOENT' ? 'no such command' : (outcome.error.code ?? outcome.error.message)}`);
    return code;
  }
  if (lost !== null) return EXIT_LOCK_LOST;
  if (outcome.signal) return 128 + signalNumber(outcome.signal);
  return outcome.code ?? 1;
}

export const lockCommand: Command = {
  name: 'lock',
  summary: 'run a command while holding a ZooKeeper lock or semaphore place (exit 75: not acquired, 76: lost)',
  async run(argv, ctx) {
    const split = argv.indexOf('--');
    const before = split < 0 ? argv : argv.slice(0, split);
    const command = split < 0 ? [] : argv.slice(split + 1);
    const { flags, positionals, help } = parseFlags(lockFlags, before, ctx.env, { positionals: true });
    if (help) {
      ctx.stdout.write(formatHelp(usage, description, lockFlags));
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'give the lock as NAMESPACE/NAME' : `one lock only, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
    if (command.length === 0 || command[0] === '') throw new UsageError('give the command to run after --, e.g. zkleader lock shop/migrate --zookeeper zk:2181 -- ./migrate.sh');
    return run(flags, positionals[0] as string, command, ctx);
  },
};
