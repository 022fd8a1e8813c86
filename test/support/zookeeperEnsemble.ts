import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fourLetterWord, serverMode, type FourLetterWord } from './fourLetterWord.js';
import { LinkProxy, type LinkMode } from './linkProxy.js';
import { releaseLoopbackPorts, reserveLoopbackPorts } from './loopbackPorts.js';
import { processState, trackChildProcess } from './processRegistry.js';
import { digestId, type DigestCredential } from '../../zookeeper/credentials.js';

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
 *
 * A partitionable ensemble (`partitionable: true`, 3 servers) puts a LinkProxy on every
 * link: one per direction of every server pair for the quorum port and one for the
 * election port, and one in front of every server's client port; isolate(), cutLink(),
 * cutClients() and heal() switch them (see LinkMode for what drop, freeze and delay do).
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
  /**
   * Default 5. In ticks: how long a follower waits for its leader, and a leader for a
   * quorum of followers, before giving up — how long a partitioned server serves on.
   */
  syncLimit?: number;
  /** Default 40000 (sidecar session timeouts are 4 s–40 s). */
  maxSessionTimeoutMs?: number;
  /** Where server logs go (kept after close); default inside the ensemble's temp dir. */
  logDir?: string;
  /** 3 servers only: every server-to-server link and every client port behind a LinkProxy. */
  partitionable?: boolean;
}

type EnsembleSettings = Required<Omit<EnsembleOptions, 'logDir'>>;

/** The proxies one server uses to reach another's quorum (peer) port and election port. */
export interface PeerLink {
  readonly quorum: LinkProxy;
  readonly election: LinkProxy;
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
/**
 * Every test ensemble accepts this credential as its superuser (what deploy/zookeeper sets
 * from the `zookeeper-admin` Secret): the admin of `zkleader tenant` and of hostile tests.
 */
export const testAdminCredential: DigestCredential = { user: 'admin', password: 'zkleader-test-admin' };

// Small and quick to start: the servers hold a few nodes and live for seconds.
const jvmFlags = [
  `-Dzookeeper.DigestAuthenticationProvider.superDigest=${digestId(testAdminCredential)}`,
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

/** The `server.N=` line of `peer` in the zoo.cfg of `self`. */
type ServerLine = (self: ServerLayout, peer: ServerLayout) => string;

const directServerLine: ServerLine = (_self, peer) => `server.${peer.id}=127.0.0.1:${peer.peerPort}:${peer.electionPort}`;

/**
 * A partitionable ensemble's lines: each server reaches every other through the proxies
 * for that direction, so each server's zoo.cfg differs. ZooKeeper 3.8 accepts that: the
 * configs' versions are equal (0, static), and with reconfigEnabled=false a follower does
 * not take the leader's config ("Dynamic reconfig is disabled, we don't store the last
 * seen config"). Its own line keeps the real ports, which it binds — on 0.0.0.0, because
 * a server opening an election connection sends its own election address in its first
 * message, and a receiver with a higher id drops that connection and connects back to
 * *that* address (QuorumCnxManager.handleConnection), around the proxy. Receivers ignore
 * a wildcard address (InitialMessage.parse) and connect back through their own zoo.cfg,
 * i.e. through their proxy.
 */
function proxiedServerLine(links: ReadonlyMap<string, PeerLink>): ServerLine {
  return (self, peer) => {
    if (peer.id === self.id) return `server.${peer.id}=0.0.0.0:${peer.peerPort}:${peer.electionPort}`;
    const link = links.get(linkKey(self.id, peer.id));
    if (link === undefined) throw new Error(`no proxies from server ${self.id} to server ${peer.id}`);
    return `server.${peer.id}=127.0.0.1:${link.quorum.port}:${link.election.port}`;
  };
}

function linkKey(fromId: number, toId: number): string {
  return `${fromId}->${toId}`;
}

function writeServerConfig(dir: string, server: ServerLayout, all: readonly ServerLayout[], opts: EnsembleSettings, serverLine: ServerLine): string {
  const serverDir = join(dir, `server-${server.id}`);
  const dataDir = join(serverDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'myid'), `${server.id}\n`);
  const lines = [
    `tickTime=${opts.tickTimeMs}`,
    'initLimit=10',
    `syncLimit=${opts.syncLimit}`,
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
    for (const peer of all) lines.push(serverLine(server, peer));
  }
  const configFile = join(serverDir, 'zoo.cfg');
  writeFileSync(configFile, `${lines.join('\n')}\n`);
  return configFile;
}

/** The proxies of a partitionable ensemble. */
interface EnsembleLinks {
  /** By linkKey(from id, to id). */
  readonly peers: ReadonlyMap<string, PeerLink>;
  /** In front of each server's client port, in server order. */
  readonly clients: readonly LinkProxy[];
}

/** How long a quorum link retries a refused connection to a (possibly still starting) leader. */
const quorumConnectRetryMs = 1000;

/** Starts the proxies of a partitionable ensemble on `ports` (reserved); on failure closes those it started. */
async function startLinks(layouts: readonly ServerLayout[], ports: readonly number[]): Promise<EnsembleLinks> {
  const started: LinkProxy[] = [];
  let next = 0;
  const startProxy = async (upstreamPort: number, name: string, connectRetryMs = 0): Promise<LinkProxy> => {
    const listenPort = ports[next++];
    if (listenPort === undefined) throw new Error(`too few ports reserved for the ensemble's proxies (${ports.length})`);
    const proxy = await LinkProxy.start({ upstreamPort, listenPort, name, connectRetryMs });
    started.push(proxy);
    return proxy;
  };
  try {
    const clients: LinkProxy[] = [];
    for (const server of layouts) clients.push(await startProxy(server.clientPort, `clients → server ${server.id}`));
    const peers = new Map<string, PeerLink>();
    for (const from of layouts) {
      for (const to of layouts) {
        if (from === to) continue;
        // A new leader binds its quorum port only after its followers may have learnt that
        // it won and connected: directly they are refused and retry; through a proxy they
        // would see a reset, give up on that leader and elect again (and again: seen).
        const quorum = await startProxy(to.peerPort, `server ${from.id} → server ${to.id} quorum`, quorumConnectRetryMs);
        const election = await startProxy(to.electionPort, `server ${from.id} → server ${to.id} election`);
        peers.set(linkKey(from.id, to.id), { quorum, election });
      }
    }
    return { peers, clients };
  } catch (err) {
    await Promise.all(started.map((proxy) => proxy.close()));
    throw err;
  }
}

export class ZooKeeperEnsemble {
  readonly servers: readonly ZooKeeperServer[];
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3": the servers' own client ports. */
  readonly connectString: string;
  /** Temp dir with data dirs, configs and (by default) logs; removed by close(). */
  readonly dir: string;
  readonly #ports: readonly number[];
  readonly #links: EnsembleLinks | undefined;
  #closing: Promise<void> | undefined;

  private constructor(dir: string, servers: readonly ZooKeeperServer[], ports: readonly number[], links: EnsembleLinks | undefined) {
    this.dir = dir;
    this.servers = servers;
    this.#ports = ports;
    this.#links = links;
    this.connectString = servers.map((s) => `127.0.0.1:${s.clientPort}`).join(',');
  }

  /** Resolves when every server serves (so a quorum does, with a leader elected). */
  static async start(opts: EnsembleOptions = {}): Promise<ZooKeeperEnsemble> {
    const settings: EnsembleSettings = {
      size: opts.size ?? 3,
      tickTimeMs: opts.tickTimeMs ?? 200,
      syncLimit: opts.syncLimit ?? 5,
      maxSessionTimeoutMs: opts.maxSessionTimeoutMs ?? 40_000,
      partitionable: opts.partitionable ?? false,
    };
    if (settings.size !== 1 && settings.size !== 3) throw new Error(`ensemble size must be 1 or 3, got ${String(settings.size)}`);
    if (!(settings.tickTimeMs > 0)) throw new Error(`tickTimeMs must be a positive number of ms, got ${settings.tickTimeMs}`);
    if (!Number.isInteger(settings.syncLimit) || settings.syncLimit < 1) throw new Error(`syncLimit must be a whole number of ticks >= 1, got ${settings.syncLimit}`);
    if (!(settings.maxSessionTimeoutMs >= 2 * settings.tickTimeMs)) {
      throw new Error(`maxSessionTimeoutMs must be at least 2 * tickTimeMs (${2 * settings.tickTimeMs}), got ${settings.maxSessionTimeoutMs}`);
    }
    if (settings.partitionable && settings.size !== 3) throw new Error(`a partitionable ensemble needs 3 servers (links to cut), got size ${settings.size}`);
    const attempts = 3;
    for (let attempt = 1; ; attempt++) {
      let ensemble: ZooKeeperEnsemble;
      try {
        ensemble = await ZooKeeperEnsemble.#create(settings, opts.logDir);
      } catch (err) {
        // Another process took a port between our reservation and a proxy's listen.
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < attempts) continue;
        throw err;
      }
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

  static async #create(settings: EnsembleSettings, logDir: string | undefined): Promise<ZooKeeperEnsemble> {
    // A standalone server binds only its client port.
    const portsPerServer = settings.size === 1 ? 1 : 3;
    const serverPorts = settings.size * portsPerServer;
    // A client proxy per server, and a quorum and an election proxy per ordered pair.
    const proxyPorts = settings.partitionable ? settings.size + 2 * settings.size * (settings.size - 1) : 0;
    const ports = await reserveLoopbackPorts(serverPorts + proxyPorts);
    const layouts: ServerLayout[] = [];
    for (let i = 0; i < settings.size; i++) {
      const [clientPort = 0, peerPort = 0, electionPort = 0] = ports.slice(i * portsPerServer, (i + 1) * portsPerServer);
      layouts.push({ id: i + 1, clientPort, peerPort, electionPort });
    }
    let links: EnsembleLinks | undefined;
    if (settings.partitionable) {
      try {
        links = await startLinks(layouts, ports.slice(serverPorts));
      } catch (err) {
        releaseLoopbackPorts(ports);
        throw err;
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'zkleader-zk-'));
    if (logDir !== undefined) mkdirSync(logDir, { recursive: true });
    const serverLine = links === undefined ? directServerLine : proxiedServerLine(links.peers);
    const servers = layouts.map((layout) => {
      const configFile = writeServerConfig(dir, layout, layouts, settings, serverLine);
      const logFile = join(logDir ?? dir, `${logDir === undefined ? '' : `${basename(dir)}-`}server-${layout.id}.log`);
      return new ZooKeeperServerProcess(layout.id, layout.clientPort, configFile, logFile);
    });
    return new ZooKeeperEnsemble(dir, servers, ports, links);
  }

  /** Whether started with `partitionable: true` (proxies on every link). */
  get partitionable(): boolean {
    return this.#links !== undefined;
  }

  /** Like connectString, but through each server's client proxy (see cutClients). Partitionable ensembles only. */
  get clientConnectString(): string {
    return this.#requireLinks('use clientConnectString')
      .clients.map((proxy) => `127.0.0.1:${proxy.port}`)
      .join(',');
  }

  /** The proxy in front of `server`'s client port. Partitionable ensembles only. */
  clientProxy(server: ZooKeeperServer): LinkProxy {
    const links = this.#requireLinks('get a client proxy');
    return links.clients[this.#indexOf(server)] as LinkProxy;
  }

  /** The proxies through which `from` reaches `to` (connections `from` opens). Partitionable ensembles only. */
  peerLink(from: ZooKeeperServer, to: ZooKeeperServer): PeerLink {
    const links = this.#requireLinks('get a peer link');
    this.#indexOf(from);
    this.#indexOf(to);
    const link = links.peers.get(linkKey(from.id, to.id));
    if (link === undefined) throw new Error(`there is no link from server ${from.id} to itself`);
    return link;
  }

  /** Cuts `server` off from every other server, both directions, quorum and election links; its clients still reach it. */
  isolate(server: ZooKeeperServer, mode: LinkMode): void {
    this.#requireLinks('isolate a server');
    for (const other of this.servers) if (other !== server) this.cutLink(server, other, mode);
  }

  /** Sets the links between two servers, both directions, quorum and election, to `mode`. */
  cutLink(a: ZooKeeperServer, b: ZooKeeperServer, mode: LinkMode): void {
    this.#requireLinks('cut a link');
    if (a === b) throw new Error(`cannot cut a link from server ${a.id} to itself`);
    for (const link of [this.peerLink(a, b), this.peerLink(b, a)]) {
      link.quorum.setMode(mode);
      link.election.setMode(mode);
    }
  }

  /** Sets the proxy in front of `server`'s client port to `mode`: its clients (through clientConnectString) are cut; its peers are not. */
  cutClients(server: ZooKeeperServer, mode: LinkMode): void {
    this.clientProxy(server).setMode(mode);
  }

  /** Every link back to pass: what freeze held is delivered. A no-op without proxies. */
  heal(): void {
    for (const proxy of this.#allProxies()) proxy.setMode('pass');
  }

  #allProxies(): LinkProxy[] {
    if (this.#links === undefined) return [];
    return [...this.#links.clients, ...[...this.#links.peers.values()].flatMap((link) => [link.quorum, link.election])];
  }

  #requireLinks(action: string): EnsembleLinks {
    if (this.#links === undefined) throw new Error(`cannot ${action}: this ensemble was started without { partitionable: true }, so it has no proxies`);
    return this.#links;
  }

  #indexOf(server: ZooKeeperServer): number {
    const index = this.servers.indexOf(server);
    if (index < 0) throw new Error(`server ${server.id} (127.0.0.1:${server.clientPort}) is not a server of this ensemble (${this.connectString})`);
    return index;
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

  /** Kills every server, closes the proxies, frees the ports and removes the temp dir. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.servers.map((s) => s.kill()));
      await Promise.all(this.#allProxies().map((proxy) => proxy.close()));
      releaseLoopbackPorts(this.#ports);
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.#closing;
  }
}
