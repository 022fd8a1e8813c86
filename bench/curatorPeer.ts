// The Curator peer of bench:sidecar (issue 15): Apache Curator's LeaderLatch, from Debian's
// libcurator-recipes-java, as a small Java participant (bench/curator/LeaderLatchParticipant.java)
// that writes its state to a file, measured beside the sidecar on the same ensemble.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { trackChildProcess } from '../test/support/processRegistry.js';
import { repoRoot } from '../test/support/repoRoot.js';

const javaDir = '/usr/share/java';
const source = join(repoRoot, 'bench', 'curator', 'LeaderLatchParticipant.java');
const classDir = join(repoRoot, 'node_modules', '.cache', 'zkleader-bench', 'curator');
const mainClass = 'LeaderLatchParticipant';
const setpriv = '/usr/bin/setpriv';

/**
 * Debian's unversioned jar names, and the package that installs each. The jars' manifests
 * name more (jackson, netty, jetty, …) that the client never loads; these are what it does.
 */
const jars: readonly (readonly [jar: string, pkg: string])[] = [
  ['curator-recipes.jar', 'libcurator-recipes-java'],
  ['curator-framework.jar', 'libcurator-framework-java'],
  ['curator-client.jar', 'libcurator-client-java'],
  ['zookeeper.jar', 'libzookeeper-java'],
  ['zookeeper-jute.jar', 'libzookeeper-java'],
  ['guava.jar', 'libguava-java'],
  ['slf4j-api.jar', 'libslf4j-java'],
  // The no-op binding: what slf4j does without one, less its warning on every start.
  ['slf4j-nop.jar', 'libslf4j-java'],
];

function classPath(): string {
  const missing = jars.filter(([jar]) => !existsSync(join(javaDir, jar)));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
    throw new Error(
      `the Curator peer needs ${missing.map(([jar]) => join(javaDir, jar)).join(', ')} (Debian's ${pkgs.join(', ')}` +
        `${pkgs.includes('libcurator-recipes-java') ? '' : '; libcurator-recipes-java depends on them'}): run scripts/setup.sh bench`,
    );
  }
  return jars.map(([jar]) => join(javaDir, jar)).join(':');
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -Infinity;
  }
}

let compiled: string | undefined;

/** Compiles the participant (skipped when its class file is newer than the source); returns the class path to run it. */
export function compileCuratorParticipant(): string {
  if (compiled) return compiled;
  const jarPath = classPath();
  if (mtime(join(classDir, `${mainClass}.class`)) <= mtime(source)) {
    mkdirSync(classDir, { recursive: true });
    try {
      // -Xlint:-path: the jars' manifests name jars the client never needs (jline, …), some not installed.
      execFileSync('javac', ['-Xlint:all,-path', '-Werror', '-d', classDir, '-cp', jarPath, source], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === 'ENOENT') throw new Error('javac not found: the Curator peer needs a JDK (run scripts/setup.sh bench)', { cause: err });
      throw new Error(`javac ${source} failed:\n${e.stderr?.toString() ?? e.message}`, { cause: err });
    }
  }
  compiled = `${jarPath}:${classDir}`;
  return compiled;
}

export interface JavaRuntime {
  /** e.g. "OpenJDK 17.0.15". */
  readonly version: string;
  readonly gc: string;
  readonly initialHeapMb: number;
  readonly maxHeapMb: number;
  /** Debian's Curator version, from its versioned jar name. */
  readonly curatorVersion: string;
}

/** What `java` (with no flags, as the participants run) chooses on this machine. */
export function javaRuntime(): JavaRuntime {
  const out = execFileSync('java', ['-XX:+PrintFlagsFinal', '-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  const flag = (name: string) => new RegExp(`\\s${name}\\s+=\\s+(\\S+)`).exec(out)?.[1];
  const gc = ['G1', 'Serial', 'Parallel', 'Z', 'Shenandoah'].find((g) => flag(`Use${g}GC`) === 'true') ?? 'unknown';
  // `java -version` writes to stderr.
  const versionText = spawnSync('java', ['-version'], { encoding: 'utf8', env: { PATH: process.env.PATH } }).stderr;
  // openjdk version "17.0.15" 2025-04-15
  const version = /^(\S+) version "([^"]+)"/m.exec(versionText);
  return {
    version: version ? `${version[1] === 'openjdk' ? 'OpenJDK' : version[1]} ${version[2]}` : 'unknown',
    gc: `${gc} GC`,
    initialHeapMb: Number(flag('InitialHeapSize')) / 2 ** 20,
    maxHeapMb: Number(flag('MaxHeapSize')) / 2 ** 20,
    curatorVersion: readdirSync(javaDir)
      .map((f) => /^curator-recipes-(\d[\w.]*)\.jar$/.exec(f)?.[1])
      .find((v) => v !== undefined) ?? 'unknown',
  };
}

export interface CuratorParticipantOptions {
  readonly connectString: string;
  /** The latch is /curator-bench/<election>. */
  readonly election: string;
  readonly id: string;
  readonly sessionTimeoutMs: number;
  /** Parent of the participant's temporary directory (default: the OS's). */
  readonly dir?: string;
}

export type CuratorState = 'starting' | 'follower' | 'leader';

export interface CuratorDocument {
  readonly id: string;
  readonly state: CuratorState;
  readonly isLeader: boolean;
}

/** One LeaderLatch participant JVM with a temporary directory for its state file. */
export class CuratorParticipant {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private running = true;
  private logText = '';

  private constructor(
    readonly id: string,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = once(child, 'exit').then(([code, signal]) => {
      this.running = false;
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
    child.stderr?.setEncoding('utf8');
    child.stdout?.setEncoding('utf8');
    // Kept short: the participant logs nothing (slf4j-nop) unless something fails.
    const keep = (chunk: string) => (this.logText = (this.logText + chunk).slice(-8000));
    child.stderr?.on('data', keep);
    child.stdout?.on('data', keep);
  }

  /** Spawns the participant; resolves once the JVM runs and has written its first state ("starting"). */
  static async start(options: CuratorParticipantOptions): Promise<CuratorParticipant> {
    const cp = compileCuratorParticipant();
    const dir = mkdtempSync(join(options.dir ?? tmpdir(), `zkleader-curator-${options.id}-`));
    const java = ['-cp', cp, mainClass, options.connectString, `/curator-bench/${options.election}`, options.id, join(dir, 'state.json'), String(options.sessionTimeoutMs)];
    // A clean environment (no JAVA_TOOL_OPTIONS): the JVM's defaults. setpriv has the kernel
    // SIGKILL the JVM if this process dies, as the ZooKeeper harness does.
    const env = { PATH: process.env.PATH };
    const child = existsSync(setpriv)
      ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', 'java', ...java], { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('java', java, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) {
      const [err] = (await once(child, 'error')) as [Error];
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`cannot start the Curator participant ${options.id}: ${err.message} (is Java installed? scripts/setup.sh bench)`);
    }
    trackChildProcess(child, `Curator LeaderLatch participant ${options.id}`);
    const participant = new CuratorParticipant(options.id, dir, child);
    const deadline = Date.now() + 30_000;
    while (participant.document() === null) {
      if (!participant.running) throw new Error(`Curator participant ${options.id} exited before it started: ${participant.logs}`);
      if (Date.now() > deadline) {
        await participant.close();
        throw new Error(`Curator participant ${options.id} wrote no state within 30 s: ${participant.logs}`);
      }
      await sleep(10);
    }
    return participant;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.running;
  }

  get logs(): string {
    return this.logText;
  }

  /** The state file, or null when missing or not (yet) a whole document. */
  document(): CuratorDocument | null {
    try {
      const doc = JSON.parse(readFileSync(join(this.dir, 'state.json'), 'utf8')) as CuratorDocument;
      return typeof doc.isLeader === 'boolean' ? doc : null;
    } catch {
      return null;
    }
  }

  /** Whether the state file says it leads; a missing or torn file is not leading. */
  isLeader(): boolean {
    return this.document()?.isLeader === true;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Kills the JVM if it still runs and removes its directory. */
  async close(): Promise<void> {
    if (this.running) {
      this.signal('SIGCONT');
      this.signal('SIGKILL');
      await this.exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The one participant that leads, once every other one has joined the latch and follows. */
export async function waitForCuratorAgreement(participants: readonly CuratorParticipant[], timeoutMs: number): Promise<{ leader: CuratorParticipant }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const docs = participants.map((p) => p.document());
    const leaders = participants.filter((_, i) => docs[i]?.state === 'leader');
    if (leaders.length === 1 && docs.every((d) => d?.state === 'leader' || d?.state === 'follower')) return { leader: leaders[0] as CuratorParticipant };
    if (Date.now() > deadline) {
      throw new Error(`no agreement on one Curator leader within ${timeoutMs} ms: ${JSON.stringify(docs)}; logs: ${participants.map((p) => `${p.id}: ${p.logs}`).join(' | ')}`);
    }
    await sleep(20);
  }
}
