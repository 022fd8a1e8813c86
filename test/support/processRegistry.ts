import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The record of every long-lived child process a test starts (ZooKeeper JVMs, and any
 * other server a harness wants accounted for), kept as files so that jest's global
 * teardown — another process — can prove none is left running.
 *
 * Layout: `<tmpdir>/zkleader-test-pids/<owner pid>/<child pid>.json`. The owner is the
 * process that spawned the child (a jest worker, or jest itself when run in band); the
 * record names the owner's parent too, so teardown can tell its own run's children from
 * those of another jest run on the same machine.
 */
export const registryRoot = join(tmpdir(), 'zkleader-test-pids');

export interface TrackedProcess {
  readonly pid: number;
  /** /proc start time of the child, so a recycled pid is never mistaken for it. */
  readonly startTime: string | undefined;
  readonly what: string;
  readonly owner: number;
  readonly ownerParent: number;
  /** Set by the owner's exit hook when it had to kill the child itself. */
  readonly leftRunning?: boolean;
}

const tracked = new Map<number, TrackedProcess>();
const ownerDir = join(registryRoot, String(process.pid));

function entryPath(dir: string, pid: number): string {
  return join(dir, `${pid}.json`);
}

/**
 * Records a spawned child until it exits; while any is recorded, this process kills
 * them all when it exits (SIGCONT first, so a paused one dies at once).
 *
 * Inside a jest test file `process` is a sandboxed copy whose 'exit' event never fires,
 * so there the exit hook does nothing: spawn children so that they die with their
 * parent (the ZooKeeper harness uses `setpriv --pdeathsig KILL`); global teardown
 * still finds their records and fails the run.
 */
export function trackChildProcess(child: ChildProcess, what: string): void {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot track ${what}: it has no pid (spawn failed)`);
  const entry: TrackedProcess = {
    pid,
    startTime: processStartTime(pid),
    what,
    owner: process.pid,
    ownerParent: process.ppid,
  };
  mkdirSync(ownerDir, { recursive: true });
  writeFileSync(entryPath(ownerDir, pid), JSON.stringify(entry));
  if (tracked.size === 0) process.on('exit', killTrackedOnExit);
  tracked.set(pid, entry);
  child.once('exit', () => untrack(pid));
}

function untrack(pid: number): void {
  if (!tracked.delete(pid)) return;
  rmSync(entryPath(ownerDir, pid), { force: true });
  if (tracked.size === 0) process.off('exit', killTrackedOnExit);
}

/** Synchronous: the 'exit' event allows nothing else. */
function killTrackedOnExit(): void {
  for (const entry of tracked.values()) {
    forceKill(entry.pid);
    try {
      writeFileSync(entryPath(ownerDir, entry.pid), JSON.stringify({ ...entry, leftRunning: true }));
    } catch {
      // The record stays as it was; teardown still finds it.
    }
  }
}

function forceKill(pid: number): void {
  for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Fields 3 onwards of /proc/<pid>/stat (state first); undefined where there is no such file. */
function procStatFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; count from its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
export function processStartTime(pid: number): string | undefined {
  return procStatFields(pid)?.[19];
}

/** The one-letter state of /proc/<pid>/stat: R, S, D, T (stopped), Z, ...; undefined when gone. */
export function processState(pid: number): string | undefined {
  return procStatFields(pid)?.[0];
}

/** Alive means: running or stopped, not a zombie, and the same process that was recorded. */
export function isAlive(pid: number, startTime?: string): boolean {
  const fields = procStatFields(pid);
  if (fields === undefined) {
    if (startTime !== undefined) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return startTime === undefined || fields[19] === startTime;
}

export interface SweepReport {
  /** This run's children that were still running and were killed now. */
  readonly killed: TrackedProcess[];
  /**
   * This run's children that outlived the tracking of the process that started them:
   * nobody waited for their exit, so they died with their owner (its exit hook, or the
   * kernel's parent-death signal) — close() was never called.
   */
  readonly outlivedOwner: TrackedProcess[];
  /** Children of earlier runs that died abruptly, killed now. */
  readonly orphansKilled: TrackedProcess[];
}

/**
 * Kills and forgets every recorded child of the run whose jest process is `runPid`,
 * and any child left by a run that no longer exists. Children of other live runs are
 * left alone.
 */
export async function sweepRegistry(runPid: number): Promise<SweepReport> {
  const report: SweepReport = { killed: [], outlivedOwner: [], orphansKilled: [] };
  for (const owner of namesIn(registryRoot)) {
    const dir = join(registryRoot, owner);
    for (const entry of readEntries(dir)) {
      const ours = entry.owner === runPid || entry.ownerParent === runPid;
      // A whole run that is gone (owner and its jest process): nobody else will sweep it.
      const orphaned = !ours && !isAlive(entry.owner) && !isAlive(entry.ownerParent);
      if (!ours && !orphaned) continue;
      if (isAlive(entry.pid, entry.startTime)) {
        forceKill(entry.pid);
        await waitForDeath(entry.pid, entry.startTime);
        (ours ? report.killed : report.orphansKilled).push(entry);
      } else if (ours) {
        // The owner removes a record as soon as it sees its child exit.
        report.outlivedOwner.push(entry);
      }
      rmSync(entryPath(dir, entry.pid), { force: true });
    }
    try {
      rmdirSync(dir);
    } catch {
      // Not empty: another run's children still live there.
    }
  }
  return report;
}

function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readEntries(dir: string): TrackedProcess[] {
  const entries: TrackedProcess[] = [];
  for (const name of namesIn(dir)) {
    if (!name.endsWith('.json')) continue;
    try {
      entries.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as TrackedProcess);
    } catch {
      // Half-written by an owner that was killed mid-write: nothing to act on.
      rmSync(join(dir, name), { force: true });
    }
  }
  return entries;
}

async function waitForDeath(pid: number, startTime: string | undefined, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid, startTime)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still alive ${timeoutMs} ms after SIGKILL`);
    await sleep(20);
  }
}
