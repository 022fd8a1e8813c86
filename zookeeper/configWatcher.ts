import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ConfigError, ConfigStore, parsePointer, type ConfigVersion } from './configStore.js';
import type { DigestCredential } from './credentials.js';
import { checkRetryDelayMs } from './election.js';
import { ZooKeeperCode, ZooKeeperError, ZooKeeperSession } from './session.js';

/*
 * Follows the current version of named configs (DESIGN.md "Configuration in ZooKeeper"):
 * one watch per pointer, no polling. Owns its own session (a config-only pod has no
 * election), opened again when one is lost. While ZooKeeper is unreachable nothing is
 * emitted, so the outputs keep the last version.
 */

export interface ConfigWatcherOptions {
  readonly connectString: string;
  readonly sessionTimeoutMs: number;
  readonly root: string;
  readonly namespace: string;
  readonly names: readonly string[];
  readonly logger: Logger;
  /** Read before every new session (tenancy). */
  readonly credential?: () => Promise<DigestCredential>;
}

export interface ConfigWatcherEvents {
  /** A config's current version (first seen, or changed). */
  update: [name: string, version: ConfigVersion];
  /** Why a config is not available (null: it is); shown on /readyz until it is. */
  problem: [name: string, problem: string | null];
}

export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  private session: ZooKeeperSession | null = null;
  private generation = 0;
  private stopped = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  /** The version on disk of each config, and its pointer's czxid: a config deleted and made again numbers from 1 anew. */
  private readonly current = new Map<string, { version: number; pointer: string }>();
  private readonly reading = new Map<string, boolean>();
  private readonly again = new Set<string>();
  private readonly readRetry = new Map<string, NodeJS.Timeout>();

  constructor(private readonly options: ConfigWatcherOptions) {
    super();
  }

  start(): void {
    void this.open();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    for (const timer of this.readRetry.values()) clearTimeout(timer);
    this.session?.close();
    this.session = null;
  }

  /** The version on disk of each config that has one. */
  versions(): ReadonlyMap<string, number> {
    return new Map([...this.current].map(([name, { version }]) => [name, version]));
  }

  /**
   * The version handed out could not be put on disk: forget it and read the config again
   * after a delay (growing while it keeps failing), so a later attempt writes it.
   */
  invalidate(name: string): void {
    this.current.delete(name);
    const gen = this.generation;
    clearTimeout(this.readRetry.get(name));
    this.readRetry.set(name, setTimeout(() => this.read(name, gen), checkRetryDelayMs(++this.failures)));
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    const gen = ++this.generation;
    let credential: DigestCredential | undefined;
    if (this.options.credential) {
      try {
        credential = await this.options.credential();
      } catch (err) {
        for (const name of this.options.names) this.emit('problem', name, `cannot authenticate to ZooKeeper: ${(err as Error).message}`);
        this.retry(gen);
        return;
      }
    }
    if (gen !== this.generation) return;
    const session = new ZooKeeperSession({ connectString: this.options.connectString, sessionTimeoutMs: this.options.sessionTimeoutMs, ...(credential ? { credential } : {}) });
    this.session = session;
    // A handle that never connects (servers down, a name that does not resolve yet) is
    // replaced, as the election replaces its own.
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      if (gen !== this.generation || this.stopped || session.everConnected) return;
      this.options.logger.warn({ zookeeper: this.options.connectString }, 'no ZooKeeper connection for configs yet; retrying with a new handle');
      this.generation++;
      session.close();
      this.retry(this.generation);
    }, this.options.sessionTimeoutMs);
    session.on('connected', () => {
      if (gen !== this.generation) return;
      this.failures = 0;
      // After every (re)connection: watches set before may have fired while away.
      for (const name of this.options.names) this.read(name, gen);
    });
    session.on('closed', () => {
      if (gen !== this.generation || this.stopped) return;
      this.options.logger.warn('config session closed; opening a new one');
      this.retry(gen);
    });
  }

  private retry(gen: number): void {
    if (gen !== this.generation || this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.open(), checkRetryDelayMs(++this.failures));
  }

  /** Reads a pointer with a watch, and its version when it moved; one read per config at a time. */
  private read(name: string, gen: number): void {
    if (this.reading.get(name)) {
      this.again.add(name);
      return;
    }
    this.reading.set(name, true);
    void this.readOnce(name, gen).finally(() => {
      this.reading.set(name, false);
      if (this.again.delete(name) && gen === this.generation) this.read(name, gen);
    });
  }

  private async readOnce(name: string, gen: number): Promise<void> {
    const session = this.session;
    if (!session || gen !== this.generation) return;
    const store = new ConfigStore(session, { root: this.options.root });
    const path = store.pointerPath(this.options.namespace, name);
    const watch = () => {
      if (gen === this.generation) this.read(name, gen);
    };
    try {
      const node = await session.get(path, watch);
      if (gen !== this.generation) return;
      if (!node) {
        // Not there yet: watch for its creation.
        if (await session.exists(path, watch)) return this.read(name, gen);
        this.emit('problem', name, `config ${this.options.namespace}/${name} does not exist (create it with \`zkleader config set ${this.options.namespace}/${name} ...\`)`);
        return;
      }
      const { version } = parsePointer(node.data, path);
      if (version === 0) {
        this.emit('problem', name, `config ${this.options.namespace}/${name} has no version yet`);
        return;
      }
      const onDisk = this.current.get(name);
      if (onDisk?.version === version && onDisk.pointer === node.stat.czxid) {
        // Back to what is on disk (e.g. after a pointer that named a missing version).
        this.emit('problem', name, null);
        return;
      }
      const value = await store.get(this.options.namespace, name, version);
      if (gen !== this.generation) return;
      this.current.set(name, { version, pointer: node.stat.czxid });
      this.emit('problem', name, null);
      this.emit('update', name, value);
    } catch (err) {
      if (gen !== this.generation) return;
      if (err instanceof ZooKeeperError && [ZooKeeperCode.CONNECTIONLOSS, ZooKeeperCode.OPERATIONTIMEOUT, ZooKeeperCode.SESSIONEXPIRED, ZooKeeperCode.CLOSING].includes(err.code as never)) {
        // The next connection reads again; the files keep the last version meanwhile.
        return;
      }
      const message =
        err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH
          ? `ZooKeeper refused reading config ${this.options.namespace}/${name} (NOAUTH): this namespace is a tenant and needs its credential`
          : err instanceof ConfigError
            ? err.message
            : `config ${this.options.namespace}/${name}: ${(err as Error).message}`;
      this.options.logger.error({ config: name, err: (err as Error).message }, 'cannot read config; retrying');
      this.emit('problem', name, message);
      clearTimeout(this.readRetry.get(name));
      this.readRetry.set(name, setTimeout(() => this.read(name, gen), checkRetryDelayMs(++this.failures)));
    }
  }
}
