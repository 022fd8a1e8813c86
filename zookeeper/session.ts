import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { formatCredential, type AclEntry, type DigestCredential } from './credentials.js';

/*
 * A typed promise API over ONE session of the `zookeeper` npm binding (7.3, the C client).
 * Quirks of the binding this module hides (read in node_modules/zookeeper/src/node-zk.cpp):
 * - stat.czxid / mzxid are JS numbers (the C int64 converted to a double), exact only up to
 *   2^53; stat.ephemeralOwner and client_id are lower-case hex strings ("%llx"). We convert
 *   both to decimal strings through BigInt and refuse a zxid that is not a safe integer
 *   rather than publish a rounded fencing token.
 * - Per-call watchers (aw_*) also receive session events (the C client hands every
 *   registered watcher a copy of session events); only node events are passed on here.
 * - The binding never frees a watcher callback (WATCHER_CALLBACK_EPILOG has no delete) and
 *   keeps the JS function alive with it. So a session registers one dispatcher function,
 *   at most one native watch per path at a time, and fans a node event out to the listeners
 *   waiting on that path: memory stays flat however often watches are set.
 * - A JS exception inside a completion callback would be thrown from native code and end
 *   the process: every callback body runs in a try/catch that rejects the request instead.
 * - When the C client loses a connection it closes its socket inside zookeeper_process(),
 *   and the binding then stops polling that fd number: a socket opened synchronously from a
 *   callback of that call (a session event, a failed request, and the promise reactions they
 *   run) can get the same number and never connect. So results, session events and watch
 *   events are handed on with setImmediate, after the binding has returned.
 * - The binding prints its own log with printf (stdout) when `debug_level` > 0; we keep it 0
 *   so stdout stays clean, and never install its JS logger.
 * - When the server stops answering for `response_counter_limit` polls the binding closes
 *   the handle itself with the "expired" code; callers treat every close alike (new session).
 * - `connect` is emitted on every (re)connection, `connecting` on every loss, `close` once —
 *   but only for a handle that exists: when zookeeper_init fails (e.g. a host name that does not
 *   resolve yet) the binding returns the error instead of throwing and then emits nothing, so
 *   the owner must give up on a handle that never connects (LeaderElection does, per timeout).
 */

interface NativeStat {
  czxid: number;
  mzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  ephemeralOwner: string;
  aversion: number;
  cversion: number;
  dataLength: number;
  numChildren: number;
}

type Rc = number;
type WatchCb = (type: number, state: number, path: string) => void;

/** The part of the binding's callback API we use (lib/zookeeper.js). */
interface NativeZooKeeper {
  on(event: 'connect' | 'connecting', listener: () => void): void;
  on(event: 'close', listener: (self: unknown, code: number) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  init(config: Record<string, unknown>): void;
  close(): void;
  readonly client_id: string;
  readonly timeout: number;
  a_create(path: string, data: string | Buffer, flags: number, cb: (rc: Rc, error: string, path: string) => void): number;
  a_exists(path: string, watch: boolean, cb: (rc: Rc, error: string, stat: NativeStat | null) => void): number;
  aw_exists(path: string, watch: WatchCb, cb: (rc: Rc, error: string, stat: NativeStat | null) => void): number;
  a_get(path: string, watch: boolean, cb: (rc: Rc, error: string, stat: NativeStat | null, data: Buffer | null) => void): number;
  aw_get(path: string, watch: WatchCb, cb: (rc: Rc, error: string, stat: NativeStat | null, data: Buffer | null) => void): number;
  a_get_children(path: string, watch: boolean, cb: (rc: Rc, error: string, children: string[]) => void): number;
  a_delete_(path: string, version: number, cb: (rc: Rc, error: string) => void): number;
  a_sync(path: string, cb: (rc: Rc, error: string, path: string) => void): number;
  a_set(path: string, data: string | Buffer, version: number, cb: (rc: Rc, error: string, stat: NativeStat | null) => void): number;
  /** The C++ object under the JS wrapper (for what the wrapper lacks or would log). */
  readonly native: NativeBinding;
}

interface NativeAclEntry {
  readonly perm?: number;
  readonly perms?: number;
  readonly scheme: string;
  readonly auth: string;
}

/** Methods of the C++ object itself; a_create_acl comes from patches/zookeeper+7.3.0.patch. */
interface NativeBinding {
  a_create_acl(path: string, data: string | Buffer, flags: number, acl: NativeAclEntry[], cb: (rc: Rc, error: string, path: string) => void): number;
  add_auth(scheme: string, auth: string, cb: (rc: Rc, error: string) => void): number;
  a_get_acl(path: string, cb: (rc: Rc, error: string, acl: NativeAclEntry[] | null, stat: NativeStat | null) => void): number;
  a_set_acl(path: string, version: number, acl: NativeAclEntry[], cb: (rc: Rc, error: string) => void): number;
}

type NativeConstructor = new () => NativeZooKeeper;

const require = createRequire(import.meta.url);
// The package's main export is the promise subclass; we use its callback methods.
const NativeZk = require('zookeeper') as NativeConstructor;

/** ZooKeeper result codes we act on (zookeeper.h). */
export const ZooKeeperCode = {
  CONNECTIONLOSS: -4,
  OPERATIONTIMEOUT: -7,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  CLOSING: -116,
} as const;

const codeNames: Record<number, string> = {
  [-1]: 'SYSTEMERROR',
  [-4]: 'CONNECTIONLOSS',
  [-7]: 'OPERATIONTIMEOUT',
  [-8]: 'BADARGUMENTS',
  [-9]: 'INVALIDSTATE',
  [-101]: 'NONODE',
  [-102]: 'NOAUTH',
  [-103]: 'BADVERSION',
  [-108]: 'NOCHILDRENFOREPHEMERALS',
  [-110]: 'NODEEXISTS',
  [-111]: 'NOTEMPTY',
  [-112]: 'SESSIONEXPIRED',
  [-113]: 'AUTH_FAILED_STATE',
  [-114]: 'INVALIDACL',
  [-115]: 'AUTHFAILED',
  [-116]: 'CLOSING',
  [-118]: 'SESSIONMOVED',
};

export class ZooKeeperError extends Error {
  override readonly name = 'ZooKeeperError';
  constructor(
    readonly operation: string,
    readonly path: string,
    readonly code: number,
  ) {
    super(`ZooKeeper ${operation} ${path} failed: ${codeNames[code] ?? 'code'} (${code})`);
  }
}

/** A znode's stat with the 64-bit ids as exact decimal strings. */
export interface ZnodeStat {
  readonly czxid: string;
  /** The zxid of the last data change (decimal). */
  readonly mzxid: string;
  /** Session id of the owner of an ephemeral node, "0" for persistent nodes. */
  readonly ephemeralOwner: string;
  readonly version: number;
  /** Number of changes (creations and deletions) of the node's children: moves with every join and leave. */
  readonly cversion: number;
  readonly numChildren: number;
}

export type NodeEvent = 'created' | 'deleted' | 'changed' | 'child';
const nodeEventTypes: Record<number, NodeEvent> = { 1: 'created', 2: 'deleted', 3: 'changed', 4: 'child' };

/** A zxid from the binding's double, as a decimal string; refuses a value the double may have rounded. */
export function zxidToDecimal(zxid: number): string {
  if (!Number.isSafeInteger(zxid) || zxid < 0) {
    throw new RangeError(`expected a zxid below 2^53 (the zookeeper binding returns zxids as doubles), got ${zxid}`);
  }
  return BigInt(zxid).toString();
}

/** A session id as the binding prints it (hex) to a decimal string. */
export function sessionIdToDecimal(hex: string): string {
  if (!/^[0-9a-f]{1,16}$/i.test(hex)) throw new Error(`expected a hexadecimal session id, got ${JSON.stringify(hex)}`);
  return BigInt(`0x${hex}`).toString();
}

/** The node's children, or none when the node does not exist. */
export async function childrenOrEmpty(session: ZooKeeperSession, path: string): Promise<string[]> {
  try {
    return await session.getChildren(path);
  } catch (err) {
    if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.NONODE) return [];
    throw err;
  }
}

function toNativeAcl(entry: AclEntry): NativeAclEntry {
  return { perm: entry.perms, scheme: entry.scheme, auth: entry.id };
}

function fromNativeAcl(entry: NativeAclEntry): AclEntry {
  return { perms: entry.perms ?? entry.perm ?? 0, scheme: entry.scheme, id: entry.auth };
}

function toStat(stat: NativeStat): ZnodeStat {
  return {
    czxid: zxidToDecimal(stat.czxid),
    mzxid: zxidToDecimal(stat.mzxid),
    ephemeralOwner: sessionIdToDecimal(stat.ephemeralOwner),
    version: stat.version,
    cversion: stat.cversion,
    numChildren: stat.numChildren,
  };
}

export type CreateMode = 'persistent' | 'persistent-sequential' | 'ephemeral-sequential';
const createFlags: Record<CreateMode, number> = { persistent: 0, 'persistent-sequential': 2, 'ephemeral-sequential': 3 };

export interface ZooKeeperSessionOptions {
  /** host:port[,host:port...][/chroot] */
  readonly connectString: string;
  readonly sessionTimeoutMs: number;
  /**
   * A digest credential to authenticate with before any request: the C client sends it
   * first on every connection of the session (DESIGN.md "Tenancy").
   */
  readonly credential?: DigestCredential;
}

export interface ZooKeeperSessionEvents {
  /** Connected or reconnected (within the same session). */
  connected: [];
  /** The connection was lost; the client keeps trying within the session. */
  disconnected: [];
  /** The handle is closed for good: expired (code -112), closed by us (0) or by the binding. */
  closed: [code: number];
}

export type NodeWatcher = (event: NodeEvent) => void;

/**
 * One ZooKeeper session. A lost session is never resumed: the owner opens a new one.
 */
export class ZooKeeperSession extends EventEmitter<ZooKeeperSessionEvents> {
  private readonly native: NativeZooKeeper;
  private closedFlag = false;
  private connectedFlag = false;
  private everConnectedFlag = false;
  /** Paths with a native watch outstanding, and who waits on each (a Set: a listener counts once). */
  private readonly watches = new Map<string, Set<NodeWatcher>>();
  /** The only watcher function this session gives the binding. */
  private readonly dispatchWatch: WatchCb = (type, _state, path) => {
    const event = nodeEventTypes[type];
    if (!event) return;
    const listeners = this.watches.get(path);
    this.watches.delete(path);
    if (listeners) setImmediate(() => listeners.forEach((listener) => listener(event)));
  };

  constructor(readonly options: ZooKeeperSessionOptions) {
    super();
    this.native = new NativeZk();
    this.native.on('connect', () => {
      this.connectedFlag = true;
      this.everConnectedFlag = true;
      setImmediate(() => this.emit('connected'));
    });
    this.native.on('connecting', () => {
      const was = this.connectedFlag;
      this.connectedFlag = false;
      if (was) setImmediate(() => this.emit('disconnected'));
    });
    this.native.on('close', (_self, code) => {
      this.connectedFlag = false;
      if (this.closedFlag) return;
      this.closedFlag = true;
      setImmediate(() => this.emit('closed', code));
    });
    this.native.on('error', () => {
      // Only emitted by connect(), which we do not use; a listener keeps EventEmitter from throwing.
    });
    this.native.init({ connect: options.connectString, timeout: options.sessionTimeoutMs, debug_level: 0 });
    if (options.credential) {
      // Queued before the first connection; the answer is awaited through authenticated().
      this.authentication = this.addAuth(options.credential);
      this.authentication.catch(() => undefined);
    }
  }

  private authentication: Promise<void> = Promise.resolve();

  /** Settles when the credential given at construction was accepted (at once without one). */
  authenticated(): Promise<void> {
    return this.authentication;
  }

  /**
   * Adds a digest identity to this session (also on a live one: a rotated password is taken
   * up without a new session). The C client re-sends every identity on each reconnection.
   * The digest scheme accepts any credential; a wrong password shows as NOAUTH later.
   */
  addAuth(credential: DigestCredential): Promise<void> {
    return this.call('addAuth', credential.user, (done) => this.native.native.add_auth('digest', formatCredential(credential), (rc) => done(rc, () => undefined)));
  }

  /** The node's ACL and its ACL version (for setAcl), or null when it does not exist. */
  getAcl(path: string): Promise<{ acl: AclEntry[]; aclVersion: number } | null> {
    return this.call('getAcl', path, (done) =>
      this.native.native.a_get_acl(path, (rc, _e, acl, stat) => {
        if (rc === ZooKeeperCode.NONODE) return done(0, () => null);
        return done(rc, () => ({ acl: (acl ?? []).map(fromNativeAcl), aclVersion: stat?.aversion ?? -1 }));
      }),
    );
  }

  /** Replaces the node's ACL; `aclVersion` -1 for any (BADVERSION when it changed meanwhile). */
  setAcl(path: string, acl: readonly AclEntry[], aclVersion = -1): Promise<void> {
    return this.call('setAcl', path, (done) => this.native.native.a_set_acl(path, aclVersion, acl.map(toNativeAcl), (rc) => done(rc, () => undefined)));
  }

  /** Replaces the node's data; `version` -1 for any. Returns the new data version. */
  set(path: string, data: string, version = -1): Promise<number> {
    return this.call('set', path, (done) => this.native.a_set(path, data, version, (rc, _e, stat) => done(rc, () => stat?.version ?? -1)));
  }

  get connected(): boolean {
    return this.connectedFlag;
  }

  /** Connected at least once (a handle that never connected has no session to lose). */
  get everConnected(): boolean {
    return this.everConnectedFlag;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** The session id as a decimal string ("0" before the first connection). */
  get sessionId(): string {
    return sessionIdToDecimal(this.native.client_id);
  }

  /** The session timeout the server granted (it may differ from the requested one). */
  get negotiatedTimeoutMs(): number {
    const t = this.native.timeout;
    return t > 0 ? t : this.options.sessionTimeoutMs;
  }

  /**
   * Creates the node; with `acl`, the node has that ACL from its creation on (the binding's
   * own a_create makes every node world-open).
   */
  create(path: string, data: string, mode: CreateMode, acl?: readonly AclEntry[]): Promise<string> {
    return this.call('create', path, (done) => {
      const cb = (rc: Rc, _e: string, created: string) => done(rc, () => created);
      return acl ? this.native.native.a_create_acl(path, data, createFlags[mode], acl.map(toNativeAcl), cb) : this.native.a_create(path, data, createFlags[mode], cb);
    });
  }

  /** Whether `watch` waits on a native watch of `path` that has not fired yet. */
  isWatching(path: string, watch: NodeWatcher): boolean {
    return this.watches.get(path)?.has(watch) === true;
  }

  /** Paths with a watch outstanding in this session (for tests and metrics). */
  get watchedPaths(): number {
    return this.watches.size;
  }

  /**
   * The node's stat, or null when it does not exist; `watch` fires once for the next node
   * event of the path (at most one native watch per path; a listener added twice fires once).
   */
  exists(path: string, watch?: NodeWatcher): Promise<ZnodeStat | null> {
    return this.call('exists', path, (done) => {
      const registered = watch ? this.addWatch(path, watch) : null;
      const cb = (rc: Rc, _e: string, stat: NativeStat | null) => {
        // An exists watch is set on an existing node and on a missing one (it fires on create).
        if (rc !== 0 && rc !== ZooKeeperCode.NONODE) this.dropWatch(path, watch, registered);
        if (rc === ZooKeeperCode.NONODE) return done(0, () => null);
        return done(rc, () => (stat ? toStat(stat) : null));
      };
      return registered ? this.native.aw_exists(path, this.dispatchWatch, cb) : this.native.a_exists(path, false, cb);
    });
  }

  /** The node's data and stat, or null when it does not exist (then no watch is set). */
  get(path: string, watch?: NodeWatcher): Promise<{ data: Buffer; stat: ZnodeStat } | null> {
    return this.call('get', path, (done) => {
      const registered = watch ? this.addWatch(path, watch) : null;
      const cb = (rc: Rc, _e: string, stat: NativeStat | null, data: Buffer | null) => {
        if (rc !== 0) this.dropWatch(path, watch, registered);
        if (rc === ZooKeeperCode.NONODE) return done(0, () => null);
        if (rc !== 0 || !stat) return done(rc, () => null);
        return done(0, () => ({ data: data ?? Buffer.alloc(0), stat: toStat(stat) }));
      };
      return registered ? this.native.aw_get(path, this.dispatchWatch, cb) : this.native.a_get(path, false, cb);
    });
  }

  /**
   * Brings the connected server up to date with the quorum's leader (ZooKeeper `sync`). A
   * server cut off from the quorum cannot complete it, so a read that follows a completed
   * sync is one the quorum vouches for.
   */
  sync(path: string): Promise<void> {
    return this.call('sync', path, (done) => this.native.a_sync(path, (rc) => done(rc, () => undefined)));
  }

  getChildren(path: string): Promise<string[]> {
    return this.call('getChildren', path, (done) => this.native.a_get_children(path, false, (rc, _e, children) => done(rc, () => children ?? [])));
  }

  /** Deletes the node; a node already gone is not an error. */
  delete(path: string, version = -1): Promise<void> {
    return this.call('delete', path, (done) =>
      this.native.a_delete_(path, version, (rc) => done(rc === ZooKeeperCode.NONODE ? 0 : rc, () => undefined)),
    );
  }

  /**
   * Creates every missing persistent node of `path` (with `acl` when given); nodes created
   * concurrently by others are fine.
   */
  async ensurePath(path: string, acl?: readonly AclEntry[]): Promise<void> {
    let prefix = '';
    for (const part of path.split('/').filter(Boolean)) {
      prefix += `/${part}`;
      // exists needs no permission; a create of an existing node would need CREATE on its
      // parent (a tenant's root may refuse it) before the server says NODEEXISTS.
      if (await this.exists(prefix)) continue;
      try {
        await this.create(prefix, '', 'persistent', acl);
      } catch (err) {
        if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NODEEXISTS)) throw err;
      }
    }
  }

  close(): void {
    if (this.closedFlag) return;
    this.native.close();
    this.closedFlag = true;
  }

  /**
   * Adds a listener for the next event of `path`. Returns true when the caller must register
   * the native watch (none outstanding), false when one is already there, null for no watch.
   */
  private addWatch(path: string, watch: NodeWatcher): boolean {
    const listeners = this.watches.get(path);
    if (listeners) {
      listeners.add(watch);
      return false;
    }
    this.watches.set(path, new Set([watch]));
    return true;
  }

  /** The request that was to set the native watch failed: no watch is outstanding for it. */
  private dropWatch(path: string, watch: NodeWatcher | undefined, registered: boolean | null): void {
    if (!watch) return;
    if (registered) this.watches.delete(path);
    else this.watches.get(path)?.delete(watch);
  }

  /**
   * Runs one asynchronous request. `done` takes the result code and a function that computes
   * the value: it runs here, so that an exception (a zxid the binding rounded) rejects this
   * request instead of escaping from the native callback and ending the process.
   */
  private call<T>(operation: string, path: string, start: (done: (rc: Rc, value: () => T) => void) => number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closedFlag) {
        reject(new ZooKeeperError(operation, path, ZooKeeperCode.CLOSING));
        return;
      }
      const done = (rc: Rc, value: () => T) => {
        let settle: () => void;
        if (rc !== 0) {
          const err = new ZooKeeperError(operation, path, rc);
          settle = () => reject(err);
        } else {
          try {
            const result = value();
            settle = () => resolve(result);
          } catch (err) {
            settle = () => reject(err as Error);
          }
        }
        setImmediate(settle);
      };
      let rcStart: number;
      try {
        rcStart = start(done);
      } catch (err) {
        reject(err as Error);
        return;
      }
      // The binding returns a negative code when the request could not even be queued.
      if (typeof rcStart === 'number' && rcStart < 0) reject(new ZooKeeperError(operation, path, rcStart));
    });
  }
}
