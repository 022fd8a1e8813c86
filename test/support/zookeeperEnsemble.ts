import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fourLetterWord, serverMode, type FourLetterWord } from './fourLetterWord.js';
import { releaseLoopbackPorts, reserveLoopbackPorts } from './loopbackPorts.js';
import { processState, trackChildProcess } from './processRegistry.js';

/**
 * A real Apache ZooKeeper ensemble (Debian's server, a JVM per server) on loopback
 * ports, for tests: start a 1- or 3-node ensemble, then stop, kill, pause and restart
 * single servers. Every JVM is recorded in the process registry, so jest's global
 * teardown proves none outlives its test run; where `setpriv` exists each JVM also
 * gets SIGKILL from the kernel when the process that started it dies.
 *
 * Start-up, measured on the 2-core test machine: ZooKeeperEnsemble.start() takes about
 * 0.5 s for a standalone server (the JVM answers `srvr` 0.25 s after spawn) and 1.3 s
 * for a 3-node ensemble to elect a leader and serve on every server; about twice that
 * while other tests load the machine.
 */

export interface ZooKeeperServer {
  /** myid, 1-based. */
  readonly id: number;
  /** On 127.0.0.1. */
  readonly clientPort: number;
  /** Undefined while not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** True between pause() and resume() (or until the server exits). */
  readonly paused: boolean;
  /** Where the server's output goes (appended to across restarts). */
  readonly logFile: string;
  /** SIGKILL (also when paused); resolves when the process has exited. No-op when not running. */
  kill(): Promise<void>;
  /** Graceful SIGTERM; resolves on exit (SIGKILL after 10 s). No-op when not running. */
  stop(): Promise<void>;
  /** SIGSTOP; resolves once the kernel reports the process stopped. */
  pause(): Promise<void>;
  /** SIGCONT; resolves once the process runs again. */
  resume(): Promise<void>;
  /**
   * (Re)starts a killed or stopped server with the same id, ports and data directory.
   * Resolves once its client port answers `ruok` — not once it serves, since a server
   * of a 3-node ensemble serves only when a majority runs (see waitServing).
   */
  start(): Promise<void>;
  /** kill() then start(). */
  restart(): Promise<void>;
  fourLetterWord(word: FourLetterWord, timeoutMs?: number): Promise<string>;
  /** Until `srvr` reports Mode leader, follower or standalone. */
  waitServing(timeoutMs?: number): Promise<void>;
}

export interface EnsembleOptions {
  /** Default 3. */
  size?: 1 | 3;
  /** Default 200 (fast elections); minSessionTimeout is twice this. */
  tickTimeMs?: number;
  /** Default 40000 (sidecar session timeouts are 4 s–40 s). */
  maxSessionTimeoutMs?: number;
  /** Where server logs go (kept after close); default inside the ensemble's temp dir. */
  logDir?: string;
}

/** Thrown when a server process exits while the harness waits for it. */
export class ZooKeeperServerExitedError extends Error {
  /** The log says a port was taken between reservation and bind: worth a retry on new ports. */
  readonly portInUse: boolean;
  constructor(message: string, logTail: string) {
    super(`${message}\n--- end of its log ---\n${logTail}`);
    this.name = 'ZooKeeperServerExitedError';
    this.portInUse = /Address already in use|BindException/.test(logTail);
  }
}

// zookeeper.jar's manifest Class-Path names the rest of its jars; slf4j-simple is the
// logging binding (without one SLF4J drops every log line).
const javaClassPath = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-simple.jar'].join(':');
// Small and quick to start: the servers hold a few nodes and live for seconds.
const jvmFlags = [
  '-Xmx128m',
  '-Xms16m',
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-Xshare:auto',
  '-XX:-UsePerfData',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.net.preferIPv4Stack=true',
  // Test data need not survive a machine crash; fsync per transaction costs elections time.
  '-Dzookeeper.forceSync=no',
  '-Dorg.slf4j.simpleLogger.showDateTime=true',
  '-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS',
];
const setpriv = '/usr/bin/setpriv';
const defaultWaitMs = 30_000;
const pollIntervalMs = 100;

function logTail(path: string, bytes = 3000): string {
  try {
    const size = statSync(path).size;
    const fd = openSync(path, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(bytes, size));
      readSync(fd, buffer, 0, buffer.length, size - buffer.length);
      return buffer.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '(no log)';
  }
}

class ZooKeeperServerProcess implements ZooKeeperServer {
  readonly id: number;
  readonly clientPort: number;
  readonly logFile: string;
  readonly #configFile: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #running = false;
  #paused = false;

  constructor(id: number, clientPort: number, configFile: string, logFile: string) {
    this.id = id;
    this.clientPort = clientPort;
    this.#configFile = configFile;
    this.logFile = logFile;
  }

  get pid(): number | undefined {
    return this.#running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#running;
  }

  get paused(): boolean {
    return this.#running && this.#paused;
  }

  #name(): string {
    return `ZooKeeper server ${this.id} (127.0.0.1:${this.clientPort})`;
  }

  async start(): Promise<void> {
    if (this.#running) throw new Error(`${this.#name()} is already running as pid ${this.pid}; kill() or stop() it first`);
    const log = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      writeSync(log, `\n=== zkleader test harness: starting server ${this.id} at ${new Date().toISOString()} ===\n`);
      const java = [...jvmFlags, '-cp', javaClassPath, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', this.#configFile];
      // setpriv makes the kernel SIGKILL the JVM when this process dies, however it dies.
      child = existsSync(setpriv)
        ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', 'java', ...java], { stdio: ['ignore', log, log] })
        : spawn('java', java, { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    if (child.pid === undefined) {
      const [err] = (await once(child, 'error')) as [Error];
      throw new Error(`cannot start ${this.#name()}: ${err.message} (is Java installed?)`);
    }
    this.#child = child;
    this.#running = true;
    this.#paused = false;
    trackChildProcess(child, this.#name());
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.#child === child) this.#running = false;
        resolve();
      });
    });
    await this.#pollUntil('ruok', (answer) => answer === 'imok', defaultWaitMs, 'answer ruok');
  }

  async kill(): Promise<void> {
    if (!this.#running) return;
    this.#child?.kill('SIGKILL');
    await this.#exited;
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.#running) return;
    this.#child?.kill('SIGTERM');
    // A stopped process keeps SIGTERM pending until it runs again.
    if (this.#paused) this.#child?.kill('SIGCONT');
    const timer = setTimeout(() => this.#child?.kill('SIGKILL'), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }

  async pause(): Promise<void> {
    this.#requireRunning('pause');
    this.#child?.kill('SIGSTOP');
    this.#paused = true;
    await this.#waitForState((state) => state === 'T' || state === 't', 'stop');
  }

  async resume(): Promise<void> {
    this.#requireRunning('resume');
    this.#child?.kill('SIGCONT');
    this.#paused = false;
    await this.#waitForState((state) => state !== 'T' && state !== 't', 'continue');
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  fourLetterWord(word: FourLetterWord, timeoutMs?: number): Promise<string> {
    return fourLetterWord(this.clientPort, word, timeoutMs);
  }

  async waitServing(timeoutMs = defaultWaitMs): Promise<void> {
    this.#requireRunning('wait for');
    await this.#pollUntil('srvr', (answer) => serverMode(answer) !== undefined, timeoutMs, 'serve (srvr Mode: leader, follower or standalone)');
  }

  #requireRunning(action: string): void {
    if (!this.#running) throw new Error(`cannot ${action} ${this.#name()}: it is not running; start() it first`);
  }

  async #waitForState(accept: (state: string) => boolean, what: string): Promise<void> {
    const pid = this.pid;
    const deadline = Date.now() + 5000;
    while (pid !== undefined && this.#running) {
      const state = processState(pid);
      // No /proc (not Linux): the signal has been sent; nothing more to observe.
      if (state === undefined || accept(state)) return;
      if (Date.now() > deadline) throw new Error(`${this.#name()} did not ${what} within 5 s of the signal (state ${state})`);
      await sleep(5);
    }
  }

  async #pollUntil(word: FourLetterWord, accept: (answer: string) => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      if (!this.#running) {
        throw new ZooKeeperServerExitedError(`${this.#name()} exited while waiting for it to ${what}`, logTail(this.logFile));
      }
      try {
        last = await this.fourLetterWord(word, 1000);
        if (accept(last)) return;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.#name()} did not ${what} within ${timeoutMs} ms; last answer: ${last.trim()}\n--- end of its log ---\n${logTail(this.logFile)}`);
      }
      await sleep(pollIntervalMs);
    }
  }
}

interface ServerLayout {
  readonly id: number;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly electionPort: number;
}

function writeServerConfig(dir: string, server: ServerLayout, all: readonly ServerLayout[], opts: Required<Omit<EnsembleOptions, 'logDir'>>): string {
  const serverDir = join(dir, `server-${server.id}`);
  const dataDir = join(serverDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'myid'), `${server.id}\n`);
  const lines = [
    `tickTime=${opts.tickTimeMs}`,
    'initLimit=10',
    'syncLimit=5',
    `dataDir=${dataDir}`,
    `dataLogDir=${join(serverDir, 'datalog')}`,
    `clientPort=${server.clientPort}`,
    'clientPortAddress=127.0.0.1',
    `minSessionTimeout=${2 * opts.tickTimeMs}`,
    `maxSessionTimeout=${opts.maxSessionTimeoutMs}`,
    '4lw.commands.whitelist=*',
    'admin.enableServer=false',
    // Transaction log files are preallocated in this many KB (default 64 MB).
    'preAllocSize=1024',
  ];
  if (all.length > 1) {
    lines.push('standaloneEnabled=false');
    for (const peer of all) lines.push(`server.${peer.id}=127.0.0.1:${peer.peerPort}:${peer.electionPort}`);
  }
  const configFile = join(serverDir, 'zoo.cfg');
  writeFileSync(configFile, `${lines.join('\n')}\n`);
  return configFile;
}

export class ZooKeeperEnsemble {
  readonly servers: readonly ZooKeeperServer[];
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3" */
  readonly connectString: string;
  /** Temp dir with data dirs, configs and (by default) logs; removed by close(). */
  readonly dir: string;
  readonly #ports: readonly number[];
  #closing: Promise<void> | undefined;

  private constructor(dir: string, servers: readonly ZooKeeperServer[], ports: readonly number[]) {
    this.dir = dir;
    this.servers = servers;
    this.#ports = ports;
    this.connectString = servers.map((s) => `127.0.0.1:${s.clientPort}`).join(',');
  }

  /** Resolves when every server serves (so a quorum does, with a leader elected). */
  static async start(opts: EnsembleOptions = {}): Promise<ZooKeeperEnsemble> {
    const settings = {
      size: opts.size ?? 3,
      tickTimeMs: opts.tickTimeMs ?? 200,
      maxSessionTimeoutMs: opts.maxSessionTimeoutMs ?? 40_000,
    };
    if (settings.size !== 1 && settings.size !== 3) throw new Error(`ensemble size must be 1 or 3, got ${String(settings.size)}`);
    if (!(settings.tickTimeMs > 0)) throw new Error(`tickTimeMs must be a positive number of ms, got ${settings.tickTimeMs}`);
    if (!(settings.maxSessionTimeoutMs >= 2 * settings.tickTimeMs)) {
      throw new Error(`maxSessionTimeoutMs must be at least 2 * tickTimeMs (${2 * settings.tickTimeMs}), got ${settings.maxSessionTimeoutMs}`);
    }
    const attempts = 3;
    for (let attempt = 1; ; attempt++) {
      const ensemble = await ZooKeeperEnsemble.#create(settings, opts.logDir);
      try {
        await Promise.all(ensemble.servers.map((s) => s.start()));
        await Promise.all(ensemble.servers.map((s) => s.waitServing()));
        return ensemble;
      } catch (err) {
        await ensemble.close();
        // Another process took a port between our reservation and the JVM's bind.
        if (err instanceof ZooKeeperServerExitedError && err.portInUse && attempt < attempts) continue;
        throw err;
      }
    }
  }

  static async #create(settings: Required<Omit<EnsembleOptions, 'logDir'>>, logDir: string | undefined): Promise<ZooKeeperEnsemble> {
    const dir = mkdtempSync(join(tmpdir(), 'zkleader-zk-'));
    // A standalone server binds only its client port.
    const portsPerServer = settings.size === 1 ? 1 : 3;
    const ports = await reserveLoopbackPorts(settings.size * portsPerServer);
    const layouts: ServerLayout[] = [];
    for (let i = 0; i < settings.size; i++) {
      const [clientPort = 0, peerPort = 0, electionPort = 0] = ports.slice(i * portsPerServer, (i + 1) * portsPerServer);
      layouts.push({ id: i + 1, clientPort, peerPort, electionPort });
    }
    if (logDir !== undefined) mkdirSync(logDir, { recursive: true });
    const servers = layouts.map((layout) => {
      const configFile = writeServerConfig(dir, layout, layouts, settings);
      const logFile = join(logDir ?? dir, `${logDir === undefined ? '' : `${basename(dir)}-`}server-${layout.id}.log`);
      return new ZooKeeperServerProcess(layout.id, layout.clientPort, configFile, logFile);
    });
    return new ZooKeeperEnsemble(dir, servers, ports);
  }

  /** Until a majority of the servers serve. */
  async waitForQuorum(timeoutMs = defaultWaitMs): Promise<void> {
    const majority = Math.floor(this.servers.length / 2) + 1;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const modes = await this.#modes();
      if (modes.filter((m) => m !== undefined).length >= majority) return;
      if (Date.now() > deadline) {
        const states = this.servers.map((s, i) => `server ${s.id}: ${s.running ? (s.paused ? 'paused' : (modes[i] ?? 'not serving')) : 'not running'}`);
        throw new Error(`no quorum (${majority} of ${this.servers.length} serving) within ${timeoutMs} ms: ${states.join(', ')}`);
      }
      await sleep(pollIntervalMs);
    }
  }

  /** The server whose `srvr` says Mode leader (or standalone); undefined when none does now. */
  async leader(): Promise<ZooKeeperServer | undefined> {
    const modes = await this.#modes();
    return this.servers.find((_, i) => modes[i] === 'leader' || modes[i] === 'standalone');
  }

  async #modes(): Promise<(string | undefined)[]> {
    return Promise.all(
      this.servers.map(async (s) => {
        if (!s.running || s.paused) return undefined;
        try {
          return serverMode(await s.fourLetterWord('srvr', 1000));
        } catch {
          return undefined;
        }
      }),
    );
  }

  /** Kills every server, frees the ports and removes the temp dir. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.servers.map((s) => s.kill()));
      releaseLoopbackPorts(this.#ports);
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.#closing;
  }
}
