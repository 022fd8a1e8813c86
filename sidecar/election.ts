import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { candidatePrefix, electionOrder, type CandidateNode } from './candidateNode.js';
import { parseCandidateData, sameOutcome, type CandidateData, type ElectionSnapshot, type MemberIdentity } from './electionSnapshot.js';
import { ZooKeeperCode, ZooKeeperError, ZooKeeperSession } from './zookeeperSession.js';

/**
 * The election's own states (Curator LeaderLatch style):
 * - connecting: no session connected yet (or a new session after a lost one);
 * - follower / leader: connected and decided by checkLeadership();
 * - suspended: connection lost within the session; we have stepped down and publish "unknown";
 * - closed: stopped for good.
 */
export type ElectionState = 'connecting' | 'follower' | 'leader' | 'suspended' | 'closed';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

export interface ElectionOptions {
  readonly connectString: string;
  readonly sessionTimeoutMs: number;
  /** `<root>/<namespace>/<election>` */
  readonly electionPath: string;
  readonly self: CandidateData;
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface ElectionEvents {
  /** A new snapshot; `outcomeChanged` is false when only renewedAt/validUntil moved. */
  update: [snapshot: ElectionSnapshot, outcomeChanged: boolean];
  connection: [state: ConnectionState];
  /** A problem worth showing on /readyz (null: resolved). */
  problem: [problem: string | null];
}

/** Delay before opening a new session after one was lost; grows while sessions keep failing. */
function reopenDelayMs(attempt: number): number {
  const base = Math.min(100 * 2 ** attempt, 5000);
  return base / 2 + Math.random() * (base / 2);
}

/**
 * One member of one election. Owns the ZooKeeper session(s) and decides leadership; its
 * outcome goes out as `update` events to outputs that cannot change it.
 */
export class LeaderElection extends EventEmitter<ElectionEvents> {
  private electionState: ElectionState = 'connecting';
  private session: ZooKeeperSession | null = null;
  /** Increments per session; callbacks of an older session are ignored. */
  private generation = 0;
  private uuid = '';
  private ownNode: string | null = null;
  /** A create was sent and its answer lost: look for our uuid before creating again. */
  private createUncertain = false;
  private checking = false;
  private checkAgain = false;
  private knownChildren = '';
  private readonly identities = new Map<string, MemberIdentity>();
  private snapshot: ElectionSnapshot | null = null;
  private renewedAt: number | null = null;
  private lostTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private failedSessions = 0;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly options: ElectionOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.log = options.logger;
  }

  get state(): ElectionState {
    return this.electionState;
  }

  get current(): ElectionSnapshot | null {
    return this.snapshot;
  }

  /** The session id of the current session (decimal), for logs and tests. */
  get sessionId(): string | null {
    return this.session?.connected ? this.session.sessionId : null;
  }

  start(): void {
    this.openSession();
    const interval = Math.floor(this.options.sessionTimeoutMs / 4);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), interval);
  }

  /**
   * Graceful stop, first half: leave leadership and publish `follower` while the node still
   * exists, so outputs can say so before anyone else takes over.
   */
  stepDown(): void {
    if (this.electionState === 'closed') return;
    this.setState('closed');
    this.publish({ state: 'follower', leader: null, epoch: null, members: this.snapshot?.members ?? [] });
  }

  /** Graceful stop, second half: delete our node (the successor's watch fires) and close the session. */
  async close(deleteTimeoutMs = 1000): Promise<void> {
    this.stepDown();
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.lostTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    const session = this.session;
    this.session = null;
    if (!session) return;
    if (this.ownNode && session.connected) {
      const path = `${this.options.electionPath}/${this.ownNode}`;
      await Promise.race([session.delete(path).catch(() => undefined), new Promise((r) => setTimeout(r, deleteTimeoutMs).unref())]);
    }
    session.close();
  }

  // --- connection-state handling: what each transition does -------------------------------

  private openSession(): void {
    if (this.electionState === 'closed') return;
    const gen = ++this.generation;
    this.uuid = randomUUID();
    this.ownNode = null;
    this.createUncertain = false;
    this.knownChildren = '';
    const session = new ZooKeeperSession({ connectString: this.options.connectString, sessionTimeoutMs: this.options.sessionTimeoutMs });
    this.session = session;
    this.emit('connection', 'connecting');
    this.emit('problem', `waiting for ZooKeeper at ${this.options.connectString}`);
    session.on('connected', () => gen === this.generation && this.onConnected());
    session.on('disconnected', () => gen === this.generation && this.onDisconnected());
    session.on('closed', (code) => gen === this.generation && this.onSessionClosed(code));
    // A handle that never connects (servers down, a name that does not resolve yet) is replaced,
    // with the growing delay of onSessionClosed.
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      if (gen !== this.generation || session.everConnected || this.electionState === 'closed') return;
      this.log.warn({ zookeeper: this.options.connectString, afterMs: this.options.sessionTimeoutMs }, 'no ZooKeeper connection yet; retrying with a new handle');
      this.generation++;
      session.close();
      this.onSessionClosed(0);
    }, this.options.sessionTimeoutMs);
  }

  private onConnected(): void {
    if (this.electionState === 'closed') return;
    clearTimeout(this.lostTimer);
    this.failedSessions = 0;
    this.log.info({ sessionId: this.session?.sessionId, timeoutMs: this.session?.negotiatedTimeoutMs }, 'connected to ZooKeeper');
    this.emit('connection', 'connected');
    this.emit('problem', null);
    // Re-check after every (re)connection: leadership is only ever claimed by a check.
    this.requestCheck();
  }

  private onDisconnected(): void {
    if (this.electionState === 'closed') return;
    this.log.warn({ state: this.electionState }, 'ZooKeeper connection lost; stepping down until reconnected');
    this.emit('connection', 'disconnected');
    this.emit('problem', `ZooKeeper connection lost; reconnecting to ${this.options.connectString}`);
    this.setState('suspended');
    this.publishUnknown();
    // Not back within the session timeout: the server has expired (or will expire) our node.
    clearTimeout(this.lostTimer);
    this.lostTimer = setTimeout(() => {
      if (this.session?.connected || this.electionState === 'closed') return;
      this.log.warn({ timeoutMs: this.options.sessionTimeoutMs }, 'not reconnected within the session timeout; starting a new session');
      this.session?.close();
    }, this.options.sessionTimeoutMs);
  }

  private onSessionClosed(code: number): void {
    if (this.electionState === 'closed') return;
    clearTimeout(this.lostTimer);
    this.log.warn({ code }, 'ZooKeeper session closed; joining again with a new session');
    if (this.electionState !== 'connecting') this.setState('suspended');
    this.publishUnknown();
    this.emit('connection', 'disconnected');
    const delay = reopenDelayMs(this.failedSessions++);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.setState('connecting');
      this.openSession();
    }, delay);
  }

  // --- the election --------------------------------------------------------------------------

  /** Runs checkLeadership(), one at a time; requests while one runs make it run once more. */
  private requestCheck(): void {
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    void (async () => {
      try {
        do {
          this.checkAgain = false;
          await this.checkLeadership();
        } while (this.checkAgain && this.electionState !== 'closed');
      } finally {
        this.checking = false;
      }
    })();
  }

  private async checkLeadership(): Promise<void> {
    const session = this.session;
    const gen = this.generation;
    if (!session?.connected || this.electionState === 'closed') return;
    const path = this.options.electionPath;
    try {
      if (!this.ownNode) await this.join(session);
      if (gen !== this.generation || !this.ownNode) return;
      const sent = this.now();
      const children = await session.getChildren(path);
      const candidates = electionOrder(children);
      this.knownChildren = candidates.map((c) => c.name).join(',');
      const ownIndex = candidates.findIndex((c) => c.name === this.ownNode);
      if (ownIndex < 0) {
        // Our node is gone while the session lives (deleted by hand?): join again.
        this.log.warn({ node: this.ownNode }, 'own candidate node disappeared; joining again');
        this.ownNode = null;
        this.checkAgain = true;
        return;
      }
      const members = await this.memberIdentities(session, candidates);
      const watch = () => gen === this.generation && this.requestCheck();
      if (ownIndex === 0) {
        const stat = await session.exists(`${path}/${this.ownNode}`, watch);
        if (gen !== this.generation) return;
        if (!stat) {
          this.checkAgain = true;
          return;
        }
        // Lowest AND owned by this very session; anything else is not leadership.
        if (stat.ephemeralOwner !== session.sessionId) {
          this.log.error({ node: this.ownNode, owner: stat.ephemeralOwner, sessionId: session.sessionId }, 'lowest node is not owned by this session; joining again');
          this.ownNode = null;
          this.checkAgain = true;
          return;
        }
        this.renew(sent);
        this.setState('leader');
        this.publish({ state: 'leader', leader: this.selfIdentity(), epoch: stat.czxid, members });
        return;
      }
      const leaderNode = candidates[0] as CandidateNode;
      const predecessor = candidates[ownIndex - 1] as CandidateNode;
      // Followers learn the leader from the leader node, and wait on their predecessor only.
      const leader = await session.get(`${path}/${leaderNode.name}`, watch);
      if (gen !== this.generation) return;
      if (!leader) {
        this.checkAgain = true;
        return;
      }
      if (predecessor.name !== leaderNode.name) {
        const pred = await session.exists(`${path}/${predecessor.name}`, watch);
        if (gen !== this.generation) return;
        if (!pred) {
          this.checkAgain = true;
          return;
        }
      }
      this.renew(sent);
      this.setState('follower');
      this.publish({ state: 'follower', leader: parseCandidateData(leader.data, leaderNode.name), epoch: leader.stat.czxid, members });
    } catch (err) {
      if (gen !== this.generation) return;
      if (err instanceof ZooKeeperError && isConnectionProblem(err.code)) {
        // The connection handler steps down and the next (re)connection checks again.
        this.log.debug({ err: err.message }, 'check interrupted by the connection');
        return;
      }
      this.log.error({ err: (err as Error).message }, 'leadership check failed; retrying');
      this.emit('problem', `election check failed: ${(err as Error).message}`);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.requestCheck(), 1000);
    }
  }

  /** Creates our candidate node, or finds the one a lost create answer left behind. */
  private async join(session: ZooKeeperSession): Promise<void> {
    const path = this.options.electionPath;
    const prefix = candidatePrefix(this.uuid);
    if (this.createUncertain) {
      const mine = (await session.getChildren(path)).filter((name) => name.startsWith(prefix));
      for (const name of mine) {
        const stat = await session.exists(`${path}/${name}`);
        // Same uuid is not enough: it must belong to this session (a node of a lost session expires).
        if (stat && stat.ephemeralOwner === session.sessionId) {
          this.ownNode = name;
          this.createUncertain = false;
          this.log.info({ node: name }, 'found own candidate node after a lost create answer');
          return;
        }
      }
    }
    await session.ensurePath(path);
    this.createUncertain = true;
    const created = await session.create(`${path}/${prefix}`, JSON.stringify(this.options.self), 'ephemeral-sequential');
    this.createUncertain = false;
    this.ownNode = created.slice(created.lastIndexOf('/') + 1);
    this.log.info({ node: this.ownNode }, 'joined the election');
  }

  private async memberIdentities(session: ZooKeeperSession, candidates: readonly CandidateNode[]): Promise<MemberIdentity[]> {
    const missing = candidates.filter((c) => !this.identities.has(c.name));
    await Promise.all(
      missing.map(async (c) => {
        const node = await session.get(`${this.options.electionPath}/${c.name}`);
        if (node) this.identities.set(c.name, parseCandidateData(node.data, c.name));
      }),
    );
    const names = new Set(candidates.map((c) => c.name));
    for (const name of this.identities.keys()) if (!names.has(name)) this.identities.delete(name);
    return candidates.flatMap((c) => {
      const id = this.identities.get(c.name);
      return id ? [id] : [];
    });
  }

  /** A cheap read at least every third of the session timeout: renews the lease, notices joins. */
  private async heartbeat(): Promise<void> {
    const session = this.session;
    const gen = this.generation;
    if (!session?.connected || this.checking || !this.ownNode || this.electionState === 'closed') return;
    const sent = this.now();
    try {
      const children = electionOrder(await session.getChildren(this.options.electionPath));
      // The state may have changed while the read was out.
      if (gen !== this.generation || this.isClosed() || !session.connected) return;
      if (children.map((c) => c.name).join(',') !== this.knownChildren) {
        this.requestCheck();
        return;
      }
      if (this.electionState === 'leader' || this.electionState === 'follower') {
        this.renew(sent);
        if (this.snapshot) this.publish(this.snapshot);
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  // --- outcome ---------------------------------------------------------------------------------

  private renew(sentAt: number): void {
    this.renewedAt = Math.max(this.renewedAt ?? 0, sentAt);
  }

  private isClosed(): boolean {
    return this.electionState === 'closed';
  }

  private setState(state: ElectionState): void {
    if (this.electionState === state) return;
    this.log.debug({ from: this.electionState, to: state }, 'election state');
    this.electionState = state;
  }

  private selfIdentity(): MemberIdentity {
    const { pod, ip, uid } = this.options.self;
    return { pod, ip, uid };
  }

  private publishUnknown(): void {
    // Nothing was decided yet: there is no outcome to withdraw.
    if (!this.snapshot || this.snapshot.state === 'unknown') return;
    this.publish({ state: 'unknown', leader: null, epoch: null, members: this.snapshot.members });
  }

  private publish(outcome: Pick<ElectionSnapshot, 'state' | 'leader' | 'epoch' | 'members'>): void {
    const previous = this.snapshot;
    // The lease is the shorter of what we asked for and what the server granted.
    const timeout = Math.min(this.options.sessionTimeoutMs, this.session?.negotiatedTimeoutMs ?? this.options.sessionTimeoutMs);
    const draft: ElectionSnapshot = {
      ...outcome,
      isLeader: outcome.state === 'leader',
      since: new Date(this.now()),
      renewedAt: this.renewedAt === null ? null : new Date(this.renewedAt),
      validUntil: this.renewedAt === null ? null : new Date(this.renewedAt + Math.floor((timeout * 2) / 3)),
    };
    const changed = previous === null || !sameOutcome(previous, draft);
    const keepSince = previous !== null && previous.state === draft.state && previous.leader?.pod === draft.leader?.pod && previous.epoch === draft.epoch;
    const snapshot = keepSince ? { ...draft, since: previous.since } : draft;
    if (!changed && previous.renewedAt?.getTime() === snapshot.renewedAt?.getTime()) return;
    this.snapshot = snapshot;
    if (changed) {
      this.log.info({ state: snapshot.state, leader: snapshot.leader?.pod ?? null, epoch: snapshot.epoch, members: snapshot.members.length }, 'election outcome');
    }
    this.emit('update', snapshot, changed);
  }
}

function isConnectionProblem(code: number): boolean {
  return (
    code === ZooKeeperCode.CONNECTIONLOSS ||
    code === ZooKeeperCode.OPERATIONTIMEOUT ||
    code === ZooKeeperCode.SESSIONEXPIRED ||
    code === ZooKeeperCode.CLOSING
  );
}
