import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { nearestAcl, type DigestCredential } from './credentials.js';
import { childrenOrEmpty, ZooKeeperCode, ZooKeeperError, ZooKeeperSession } from './session.js';
import { SessionLease } from './sessionLease.js';

/*
 * The lock / semaphore recipe (DESIGN.md "Locks and semaphores"):
 *
 *   <root>/<ns>/_locks/<name>/<uuid>-lock-<10-digit seq>   EPHEMERAL_SEQUENTIAL, one per waiter
 *
 * Fair: waiters hold in the order of their sequence; the first `holders` hold. No herd: a
 * waiter watches only the `holders` nodes just ahead of it — it can only come to hold when
 * one of those leaves (a node further ahead leaving leaves those `holders` ahead of it), so
 * nobody else is woken. With a lost create answer the node is found again by its uuid and
 * accepted only if this session owns it; holding is claimed only by a synced check that finds
 * the node among the first `holders` and owned by this session. The holder's lease is the
 * election's (SessionLease): renewed by a synced read every quarter of the session timeout;
 * when it runs out unrenewed, or the node or session is gone, `lost` is emitted once.
 * Knows nothing of processes or Kubernetes.
 */

export interface LockNode {
  readonly name: string;
  readonly uuid: string;
  readonly sequence: number;
}

const lockNodeSyntax = /^([0-9a-f-]{36})-lock-(\d{10})$/;

export function lockNodePrefix(uuid: string): string {
  return `${uuid}-lock-`;
}

/** The waiters of a lock in the order they hold; children of other names are ignored. */
export function lockOrder(children: readonly string[]): LockNode[] {
  return children
    .flatMap((name) => {
      const m = lockNodeSyntax.exec(name);
      return m?.[1] && m[2] ? [{ name, uuid: m[1], sequence: Number(m[2]) }] : [];
    })
    .sort((a, b) => a.sequence - b.sequence);
}

/** Which nodes a waiter at `index` watches: the `holders` just ahead of it (none once it holds). */
export function nodesToWatch(order: readonly LockNode[], index: number, holders: number): LockNode[] {
  return index < holders ? [] : order.slice(index - holders, index);
}

export interface LockOptions {
  readonly connectString: string;
  readonly sessionTimeoutMs: number;
  /** `<root>/<ns>/_locks/<name>` */
  readonly lockPath: string;
  /** At most this many hold at once (1: a mutex). */
  readonly holders: number;
  /** What the node says about its owner (JSON), for `zkleader status` and people. */
  readonly owner: Readonly<Record<string, string>>;
  /** Tenancy: with it, every node is created with the ACL of the nearest node above it (nearestAcl). */
  readonly credential?: DigestCredential;
  readonly logger?: Logger;
  readonly now?: () => number;
}

export interface Holding {
  /** The fencing token: our node's czxid (decimal), which only grows from holder to holder. */
  readonly token: string;
  readonly node: string;
}

export interface LockEvents {
  /** While holding: the lease was renewed up to this time. */
  renewed: [validUntil: number];
  /** While holding: the lock is no longer ours, or we cannot vouch for it any more. Once. */
  lost: [reason: string];
}

/** ZooKeeper refused, or the lock path is unusable: acquiring cannot succeed by waiting. */
export class LockError extends Error {
  override readonly name = 'LockError';
}

function isConnectionProblem(err: unknown): boolean {
  return (
    err instanceof ZooKeeperError &&
    [ZooKeeperCode.CONNECTIONLOSS, ZooKeeperCode.OPERATIONTIMEOUT, ZooKeeperCode.SESSIONEXPIRED, ZooKeeperCode.CLOSING].includes(err.code as never)
  );
}

/** Resolves on notify() or after a time, whichever comes first; one waiter at a time. */
class Wakeup {
  private wake: (() => void) | null = null;
  private pending = false;

  notify(): void {
    if (this.wake) this.wake();
    else this.pending = true;
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
      this.wake = done;
    });
  }
}

export class DistributedLock extends EventEmitter<LockEvents> {
  private session: ZooKeeperSession | null = null;
  private uuid = randomUUID();
  private ownNode: string | null = null;
  private createUncertain = false;
  /** Children named like waiters but persistent (nobody's session): never counted. */
  private readonly notWaiters = new Set<string>();
  private readonly wakeup = new Wakeup();
  private readonly lease = new SessionLease(() => Math.min(this.options.sessionTimeoutMs, this.session?.everConnected ? this.session.negotiatedTimeoutMs : this.options.sessionTimeoutMs));
  private holding = false;
  /** acquire() has looked at the queue at least once (it had a session to try with). */
  private looked = false;
  private lostReason: string | null = null;
  private released = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: LockOptions) {
    super();
    if (!Number.isInteger(options.holders) || options.holders < 1) throw new LockError(`holders must be a whole number of at least 1, got ${options.holders}`);
    this.now = options.now ?? Date.now;
  }

  /** The end of the holder's lease (null: not holding, or no lease yet). */
  get validUntil(): number | null {
    return this.holding ? this.lease.end() : null;
  }

  /** Whether acquire() ever looked at the queue: false when it never had a ZooKeeper session. */
  get queueSeen(): boolean {
    return this.looked;
  }

  /** Our node's name while we wait or hold. */
  get node(): string | null {
    return this.ownNode;
  }

  /** The current session (tests count its watches). */
  get currentSession(): ZooKeeperSession | null {
    return this.session;
  }

  /**
   * Waits until we hold, or `waitMs` has passed (null: without end; 0: one try). Resolves
   * with the holding, or null when not acquired in time (our node is gone by then).
   * Rejects with LockError when ZooKeeper refuses us (NOAUTH) — waiting would not help.
   */
  async acquire(waitMs: number | null, signal?: AbortSignal): Promise<Holding | null> {
    const deadline = waitMs === null ? Number.POSITIVE_INFINITY : this.now() + waitMs;
    // A try (--wait 0) or a short wait still needs a session to try with: until the first
    // look at the queue, connecting may take up to the session timeout.
    const connectBy = Math.max(deadline, this.now() + this.options.sessionTimeoutMs);
    const onAbort = () => this.wakeup.notify();
    signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (this.released || signal?.aborted) return null;
        const session = this.currentOrNewSession();
        if (!session.connected) {
          const giveUpAt = this.looked ? deadline : connectBy;
          if (this.now() >= giveUpAt) break;
          await this.wakeup.wait(giveUpAt - this.now());
          continue;
        }
        let step: Holding | 'again' | 'wait' | 'later';
        try {
          step = await this.check(session);
        } catch (err) {
          if (isConnectionProblem(err)) continue;
          if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH) {
            throw new LockError(`ZooKeeper refused ${this.options.lockPath} (NOAUTH): the namespace is a tenant and needs its credential (--credential-file)`);
          }
          throw err;
        }
        if (step === 'again') continue;
        if (typeof step === 'object') return step;
        this.looked = true;
        if (this.now() >= deadline) break;
        // Waiting, look again at least every quarter of T: each synced look renews the lease,
        // so that a long wait leaves one to hold with. 'later': no renewal old enough to anchor
        // the lease yet; look again once there is.
        const pause = step === 'wait' ? this.options.sessionTimeoutMs / 4 : this.lease.anchorAgeMs + 10;
        await this.wakeup.wait(Math.min(deadline - this.now(), Math.ceil(pause)));
      }
      await this.release();
      return null;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Gives the lock up (or stops waiting): deletes our node and closes the session. Idempotent. */
  async release(deleteTimeoutMs = 2000): Promise<void> {
    this.released = true;
    this.holding = false;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.leaseTimer);
    this.wakeup.notify();
    const session = this.session;
    this.session = null;
    if (!session) return;
    if (this.ownNode && session.connected) {
      const path = `${this.options.lockPath}/${this.ownNode}`;
      await Promise.race([session.delete(path).catch(() => undefined), new Promise((r) => setTimeout(r, deleteTimeoutMs).unref())]);
    }
    session.close();
  }

  private currentOrNewSession(): ZooKeeperSession {
    if (this.session && !this.session.closed) return this.session;
    // A lost session took our node with it: we queue again, at the end.
    this.session?.close();
    this.ownNode = null;
    this.createUncertain = false;
    this.uuid = randomUUID();
    const { credential } = this.options;
    const session = new ZooKeeperSession({ connectString: this.options.connectString, sessionTimeoutMs: this.options.sessionTimeoutMs, ...(credential ? { credential } : {}) });
    this.session = session;
    this.lease.newSession(this.now());
    const wake = () => this.wakeup.notify();
    session.on('connected', wake);
    session.on('disconnected', wake);
    session.on('closed', () => {
      wake();
      if (this.holding && session === this.session) this.lose('the ZooKeeper session expired or was closed');
    });
    return session;
  }

  /** One synced look at the queue: we hold, we wait (watches set), or look again. */
  private async check(session: ZooKeeperSession): Promise<Holding | 'again' | 'wait' | 'later'> {
    const path = this.options.lockPath;
    const sent = this.now();
    await session.sync(path);
    if (!this.ownNode) await this.join(session);
    const order = lockOrder(await childrenOrEmpty(session, path)).filter((n) => !this.notWaiters.has(n.name));
    // A read after a completed sync: a renewal of the session's lease, holding or not.
    this.lease.renew(sent);
    const index = order.findIndex((n) => n.name === this.ownNode);
    if (index < 0) {
      this.options.logger?.warn({ node: this.ownNode }, 'own lock node is gone; queueing again');
      this.ownNode = null;
      return 'again';
    }
    if (index < this.options.holders) {
      const stat = await session.exists(`${path}/${this.ownNode}`, () => this.onOwnNodeEvent(session));
      if (!stat || stat.ephemeralOwner !== session.sessionId) {
        this.ownNode = null;
        return 'again';
      }
      if (!this.lease.valid(this.now())) return 'later';
      this.hold(session);
      return { token: stat.czxid, node: this.ownNode as string };
    }
    for (const ahead of nodesToWatch(order, index, this.options.holders)) {
      const stat = await session.exists(`${path}/${ahead.name}`, () => this.wakeup.notify());
      if (!stat) return 'again';
      if (stat.ephemeralOwner === '0') {
        // Made by hand to pose as a waiter: it would block the queue forever.
        this.options.logger?.warn({ node: ahead.name }, 'a persistent node poses as a lock waiter; not counting it');
        this.notWaiters.add(ahead.name);
        return 'again';
      }
    }
    return 'wait';
  }

  /** Creates our node, or finds the one a lost create answer left (the caller has synced). */
  private async join(session: ZooKeeperSession): Promise<void> {
    const path = this.options.lockPath;
    const prefix = lockNodePrefix(this.uuid);
    if (this.createUncertain) {
      for (const name of (await childrenOrEmpty(session, path)).filter((n) => n.startsWith(prefix))) {
        const stat = await session.exists(`${path}/${name}`);
        if (stat && stat.ephemeralOwner === session.sessionId) {
          this.ownNode = name;
          this.createUncertain = false;
          return;
        }
      }
    }
    const acl = this.options.credential ? await nearestAcl(session, path) : undefined;
    const data = JSON.stringify(this.options.owner);
    this.createUncertain = true;
    let created: string;
    try {
      created = await session.create(`${path}/${prefix}`, data, 'ephemeral-sequential', acl);
    } catch (err) {
      if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NONODE)) throw err;
      this.createUncertain = false;
      await session.ensurePath(path, acl);
      this.createUncertain = true;
      created = await session.create(`${path}/${prefix}`, data, 'ephemeral-sequential', acl);
    }
    this.createUncertain = false;
    this.ownNode = created.slice(created.lastIndexOf('/') + 1);
  }

  private hold(session: ZooKeeperSession): void {
    this.holding = true;
    const quarter = Math.floor(Math.min(this.options.sessionTimeoutMs, session.negotiatedTimeoutMs) / 4);
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(session), quarter);
    this.armLease();
  }

  /** A synced read of our node every quarter of the timeout renews the lease. */
  private async heartbeat(session: ZooKeeperSession): Promise<void> {
    if (!this.holding || session !== this.session || !session.connected) return;
    const sent = this.now();
    try {
      await session.sync(this.options.lockPath);
      const stat = await session.exists(`${this.options.lockPath}/${this.ownNode}`);
      if (!this.holding || session !== this.session) return;
      if (!stat || stat.ephemeralOwner !== session.sessionId) {
        this.lose('the lock node was deleted');
        return;
      }
      this.lease.renew(sent);
      this.armLease();
    } catch (err) {
      this.options.logger?.debug({ err: (err as Error).message }, 'lock heartbeat failed');
    }
  }

  private armLease(): void {
    const end = this.lease.end();
    clearTimeout(this.leaseTimer);
    if (end === null) return;
    this.emit('renewed', end);
    this.leaseTimer = setTimeout(() => this.onLeaseTimer(), Math.max(0, end - this.now()));
  }

  private onLeaseTimer(): void {
    const end = this.lease.end();
    if (!this.holding) return;
    if (end !== null && end > this.now()) {
      this.armLease();
      return;
    }
    const renewed = this.lease.renewedAt;
    this.lose(`no renewal vouched for by the ZooKeeper quorum since ${renewed === null ? 'the start' : new Date(renewed).toISOString()}: the lease ran out`);
  }

  private onOwnNodeEvent(session: ZooKeeperSession): void {
    if (!this.holding || session !== this.session) return;
    // Deleted or changed: look now rather than at the next heartbeat.
    void this.heartbeat(session);
  }

  private lose(reason: string): void {
    if (!this.holding || this.lostReason !== null) return;
    this.holding = false;
    this.lostReason = reason;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.leaseTimer);
    this.options.logger?.warn({ reason }, 'lock lost');
    this.emit('lost', reason);
  }
}
