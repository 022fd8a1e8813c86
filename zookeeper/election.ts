import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { candidatePrefix, electionOrder, type CandidateNode } from './candidateNode.js';
import { parseCandidateData, sameOutcome, type CandidateData, type ElectionSnapshot, type MemberIdentity } from './electionSnapshot.js';
import { nearestAcl, type AclEntry, type DigestCredential } from './credentials.js';
import { childrenOrEmpty, ZooKeeperCode, ZooKeeperError, ZooKeeperSession, type ZnodeStat } from './session.js';
import { SessionLease } from './sessionLease.js';

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
  /**
   * Tenancy (DESIGN.md): the digest credential of this namespace's members, read before
   * every new session (a rotated file is taken up; see authenticate() for a live session).
   * It rejects with an error whose message says what is wrong (missing file, bad syntax).
   * With it, every node this member creates carries the creator-only ACL from its creation.
   */
  readonly credential?: () => Promise<DigestCredential>;
  /**
   * The longest session timeout any member of the election may have (default 40 s, the
   * sidecar's maximum): how long a changed lowest node blocks before any member deletes it,
   * because its owner's lease may run that long.
   */
  readonly maxPeerSessionTimeoutMs?: number;
}

/** A candidate whose data changed after its creation (data version not 0). */
export interface TamperedCandidate {
  readonly node: string;
  readonly version: number;
  /** Our own node: we step down, delete it and join again with a fresh one. */
  readonly own: boolean;
}

export interface ElectionEvents {
  /** A new snapshot; `outcomeChanged` is false when only renewedAt/validUntil moved. */
  update: [snapshot: ElectionSnapshot, outcomeChanged: boolean];
  connection: [state: ConnectionState];
  /** A problem worth showing on /readyz (null: resolved). */
  problem: [problem: string | null];
  /** The leader's lease ran out without a renewal the quorum vouched for: it stepped down on its own. */
  leaseExpired: [validUntil: Date];
  /** A candidate's data was changed after creation; reported once per node. */
  tampered: [candidate: TamperedCandidate];
  /**
   * ZooKeeper refused access (NOAUTH), or the credential could not be read: the message says
   * why and what to do. Emitted once per distinct message until access works again.
   */
  accessDenied: [message: string];
}

/** Delay before opening a new session after one was lost; grows while sessions keep failing. */
function reopenDelayMs(attempt: number): number {
  const base = Math.min(100 * 2 ** attempt, 5000);
  return base / 2 + Math.random() * (base / 2);
}

/**
 * Retry of a leadership check that failed for another reason than the connection (or of a
 * credential that could not be read): 1 s, doubling while it keeps failing, up to 30 s.
 */
export function checkRetryDelayMs(failures: number): number {
  return Math.min(1000 * 2 ** Math.max(0, failures - 1), 30_000);
}

/** Identities one session may take up through rotations (the first and three more). */
const maxSessionCredentials = 4;

type Outcome = Pick<ElectionSnapshot, 'state' | 'leader' | 'epoch' | 'members'>;

/**
 * One member of one election. Owns the ZooKeeper session(s) and decides leadership; its
 * outcome goes out as `update` events to outputs that cannot change it.
 *
 * The safety rules (DESIGN.md "ZooKeeper layout and the election"):
 * - leadership is claimed only by a check whose reads follow a `sync`, when our node is the
 *   lowest and owned by this session; the same synced reads renew the lease (heartbeat,
 *   check, reconnect alike), and a lease that runs out unrenewed steps the member down;
 * - on disconnect, step down at once; a session not back within its timeout is lost;
 * - once stopping, nothing in flight changes the state and no session is opened again.
 */
export class LeaderElection extends EventEmitter<ElectionEvents> {
  private electionState: ElectionState = 'connecting';
  private session: ZooKeeperSession | null = null;
  /** Increments per session and on stepDown(); callbacks and checks of an older one are ignored. */
  private generation = 0;
  /** The watch listener of the current generation (one function, so a path's watch counts it once). */
  private watcher: () => void = () => undefined;
  private uuid = '';
  private ownNode: string | null = null;
  /** A create was sent and its answer lost: look for our uuid before creating again. */
  private createUncertain = false;
  private checking = false;
  private checkAgain = false;
  /** The last check failed for a reason other than the connection (shown on /readyz until one succeeds). */
  private checkFailed = false;
  /**
   * The election node's children version (czxid:cversion) as of the last check's list: a
   * heartbeat lists the children again only when it moved ('' — unknown: it moved).
   */
  private knownChildrenVersion = '';
  /** The candidates (in election order) the last check used, and the version read just before they were listed (see candidatesInOrder()). */
  private knownChildren: { readonly ordered: readonly CandidateNode[]; readonly czxid: string; readonly cversion: number } | null = null;
  private readonly identities = new Map<string, MemberIdentity>();
  private snapshot: ElectionSnapshot | null = null;
  private readonly lease = new SessionLease(() => Math.min(this.options.sessionTimeoutMs, this.sessionTimeoutMs()));
  private lostTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private checkRetryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private failedSessions = 0;
  /** Consecutive failed checks (or credential reads), for the retry backoff. */
  private failedChecks = 0;
  /** The last accessDenied message emitted (null once access works). */
  private deniedMessage: string | null = null;
  /** The credential of the current session, and later ones a live session took up. */
  private credentials: DigestCredential[] = [];
  /** Candidates reported as tampered, and when first seen so (pruned when they leave the election). */
  private readonly tampered = new Map<string, number>();
  /** Children named like candidates but persistent (no member's session owns them): never candidates. */
  private readonly notCandidates = new Set<string>();
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

  /** The session timeout the server granted to the current session (null before it connects). */
  get negotiatedTimeoutMs(): number | null {
    return this.session?.everConnected ? this.session.negotiatedTimeoutMs : null;
  }

  /** The session id of the current session (decimal), for logs and tests. */
  get sessionId(): string | null {
    return this.session?.connected ? this.session.sessionId : null;
  }

  start(): void {
    this.openSession();
  }

  /**
   * Graceful stop, first half: leave leadership and publish `follower` while the node still
   * exists, so outputs can say so before anyone else takes over. Ends every check and watch
   * in flight (their answers belong to an older generation) and every timer: from here on
   * nothing changes the state or opens a session.
   */
  stepDown(): void {
    if (this.electionState === 'closed') return;
    this.generation++;
    this.log.debug({ from: this.electionState, to: 'closed' }, 'election state');
    this.electionState = 'closed';
    this.clearTimers();
    this.publish({ state: 'follower', leader: null, epoch: null, members: this.snapshot?.members ?? [] }, true);
  }

  /** Graceful stop, second half: delete our node (the successor's watch fires) and close the session. */
  async close(deleteTimeoutMs = 1000): Promise<void> {
    this.stepDown();
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

  /** The session timeout in force: what the server granted once connected, else what we asked for. */
  private sessionTimeoutMs(): number {
    return this.session?.everConnected ? this.session.negotiatedTimeoutMs : this.options.sessionTimeoutMs;
  }

  private isStale(gen: number): boolean {
    return gen !== this.generation || this.electionState === 'closed';
  }

  private clearTimers(): void {
    clearInterval(this.heartbeatTimer);
    for (const timer of [this.lostTimer, this.reopenTimer, this.checkRetryTimer, this.connectTimer, this.leaseTimer]) clearTimeout(timer);
  }

  private openSession(): void {
    if (this.electionState === 'closed') return;
    if (!this.options.credential) {
      this.startSession([]);
      return;
    }
    const gen = ++this.generation;
    this.options.credential().then(
      (credential) => {
        if (this.isStale(gen)) return;
        this.startSession([credential]);
      },
      (err: Error) => {
        if (this.isStale(gen)) return;
        // No session without the credential: a member without it would create open nodes.
        this.denied(`cannot authenticate to ZooKeeper: ${err.message}`);
        clearTimeout(this.reopenTimer);
        this.reopenTimer = setTimeout(() => this.openSession(), checkRetryDelayMs(++this.failedChecks));
      },
    );
  }

  /**
   * Adds a (rotated) credential to the live session, so that the member keeps its session
   * and node — its leadership — while the old password is retired; later sessions use it too.
   */
  async authenticate(credential: DigestCredential): Promise<void> {
    if (this.credentials.some((c) => c.user === credential.user && c.password === credential.password)) return;
    const session = this.session;
    // The C client keeps (and re-sends on every reconnection) each identity a session was
    // given: a file changing again and again must not grow that without end. Past a few,
    // the next session takes the file's credential up.
    if (this.credentials.length >= maxSessionCredentials) {
      this.log.warn({ identities: this.credentials.length }, 'the credential changed again; the next session uses it (this one keeps the identities it has)');
      return;
    }
    this.credentials = [...this.credentials, credential];
    if (!session || session.closed) return;
    await session.addAuth(credential);
    // A check refused with the old password need not wait out its backoff.
    if (this.checkFailed && session === this.session) {
      this.failedChecks = 0;
      clearTimeout(this.checkRetryTimer);
      this.requestCheck();
    }
  }

  private startSession(credentials: DigestCredential[]): void {
    if (this.electionState === 'closed') return;
    this.credentials = credentials;
    const gen = ++this.generation;
    this.watcher = () => {
      if (!this.isStale(gen)) this.requestCheck();
    };
    this.uuid = randomUUID();
    this.lease.newSession(this.now());
    this.ownNode = null;
    this.createUncertain = false;
    this.knownChildrenVersion = '';
    this.knownChildren = null;
    const [credential] = credentials;
    const session = new ZooKeeperSession({ connectString: this.options.connectString, sessionTimeoutMs: this.options.sessionTimeoutMs, ...(credential ? { credential } : {}) });
    this.session = session;
    this.emit('connection', 'connecting');
    this.emit('problem', `waiting for ZooKeeper at ${this.options.connectString}`);
    session.on('connected', () => gen === this.generation && this.onConnected(session));
    session.on('disconnected', () => gen === this.generation && this.onDisconnected(session));
    session.on('closed', (code) => gen === this.generation && this.onSessionClosed(code));
    // A handle that never connects (servers down, a name that does not resolve yet) is replaced,
    // with the growing delay of onSessionClosed.
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      if (this.isStale(gen) || session.everConnected) return;
      this.log.warn({ zookeeper: this.options.connectString, afterMs: this.options.sessionTimeoutMs }, 'no ZooKeeper connection yet; retrying with a new handle');
      this.abandon(session);
    }, this.options.sessionTimeoutMs);
  }

  /** Closes a session we give up on and goes on as if the server had closed it. */
  private abandon(session: ZooKeeperSession): void {
    this.generation++;
    session.close();
    this.onSessionClosed(0);
  }

  private onConnected(session: ZooKeeperSession): void {
    if (this.electionState === 'closed') return;
    clearTimeout(this.lostTimer);
    this.failedSessions = 0;
    const negotiatedMs = session.negotiatedTimeoutMs;
    this.log.info({ sessionId: session.sessionId, timeoutMs: negotiatedMs }, 'connected to ZooKeeper');
    if (negotiatedMs !== this.options.sessionTimeoutMs) {
      this.log.warn(
        { requestedMs: this.options.sessionTimeoutMs, negotiatedMs },
        'ZooKeeper granted another session timeout than asked for (its minSessionTimeout/maxSessionTimeout); heartbeats, the lease and the lost-session timer follow the granted one',
      );
    }
    // A cheap synced read at least every quarter of the timeout keeps the lease (2/3) fresh.
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), Math.floor(Math.min(this.options.sessionTimeoutMs, negotiatedMs) / 4));
    this.emit('connection', 'connected');
    this.emit('problem', null);
    // Re-check after every (re)connection: leadership is only ever claimed by a check.
    this.requestCheck();
  }

  private onDisconnected(session: ZooKeeperSession): void {
    if (this.electionState === 'closed') return;
    this.log.warn({ state: this.electionState }, 'ZooKeeper connection lost; stepping down until reconnected');
    this.emit('connection', 'disconnected');
    this.emit('problem', `ZooKeeper connection lost; reconnecting to ${this.options.connectString}`);
    this.suspend();
    // Not back within the session timeout: the server has expired (or will expire) our node.
    const gen = this.generation;
    const timeoutMs = this.sessionTimeoutMs();
    clearTimeout(this.lostTimer);
    this.lostTimer = setTimeout(() => {
      if (this.isStale(gen) || session.connected) return;
      this.log.warn({ timeoutMs }, 'not reconnected within the session timeout; starting a new session');
      this.abandon(session);
    }, timeoutMs);
  }

  private onSessionClosed(code: number): void {
    if (this.electionState === 'closed') return;
    clearTimeout(this.lostTimer);
    clearInterval(this.heartbeatTimer);
    this.log.warn({ code }, 'ZooKeeper session closed; joining again with a new session');
    if (this.electionState !== 'connecting') this.suspend();
    this.emit('connection', 'disconnected');
    const delay = reopenDelayMs(this.failedSessions++);
    clearTimeout(this.reopenTimer);
    this.reopenTimer = setTimeout(() => {
      this.setState('connecting');
      this.openSession();
    }, delay);
  }

  /** Stepped down until a check decides again: files say unknown, the label follower. */
  private suspend(): void {
    this.setState('suspended');
    this.publishUnknown();
  }

  // --- the election --------------------------------------------------------------------------

  /** Runs checkLeadership(), one at a time; requests while one runs make it run once more. */
  private requestCheck(): void {
    if (this.electionState === 'closed') return;
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
    if (!session?.connected || this.isStale(gen)) return;
    const path = this.options.electionPath;
    // Answered by a server the quorum has brought up to date: a cut-off server cannot sync.
    const stale = () => this.isStale(gen) || !session.connected;
    try {
      const sent = this.now();
      await session.sync(path);
      if (stale()) return;
      if (!this.ownNode) await this.join(session);
      if (stale() || !this.ownNode) return;
      // No election node (deleted by an admin, e.g. `zkleader tenant remove --force`): our node
      // went with it, and joining again makes it anew, or says why it cannot.
      // The stat is sent first and a session's requests are answered in order: the version
      // is never newer than the list (a change between the two only makes a heartbeat list again).
      const all = await this.candidatesInOrder(session, path);
      if (stale()) return;
      const present = new Set(all.map((c) => c.name));
      for (const name of this.tampered.keys()) if (!present.has(name)) this.tampered.delete(name);
      for (const name of this.notCandidates) if (!present.has(name)) this.notCandidates.delete(name);
      const candidates = all.filter((c) => !this.notCandidates.has(c.name));
      const ownIndex = candidates.findIndex((c) => c.name === this.ownNode);
      if (ownIndex < 0) {
        // Deleted by someone while the session lives: we cannot lead on a node we no longer have.
        this.rejoin('own candidate node disappeared');
        return;
      }
      const members = await this.memberIdentities(session, candidates);
      if (stale()) return;
      if (candidates.some((c) => this.notCandidates.has(c.name))) {
        // A persistent node posing as a candidate was found: decide without it.
        this.checkAgain = true;
        return;
      }
      if (ownIndex === 0) {
        // The leader watches its own node: a deletion or a change of its data comes at once.
        // (A follower's own node matters once it is the lowest: then it is checked here.)
        const stat = await session.exists(`${path}/${this.ownNode}`, this.watcher);
        if (stale()) return;
        if (!stat) {
          this.rejoin('own candidate node disappeared');
          return;
        }
        if (stat.version !== 0) {
          // Changed after creation (tampering): step down, delete it, join with a fresh node.
          await this.replaceTamperedOwnNode(session, stat.version);
          return;
        }
        // Lowest AND owned by this very session; anything else is not leadership.
        if (stat.ephemeralOwner !== session.sessionId) {
          this.log.error({ node: this.ownNode, owner: stat.ephemeralOwner, sessionId: session.sessionId }, 'lowest node is not owned by this session');
          this.rejoin('own candidate node owned by another session');
          return;
        }
        this.conclude(sent, { state: 'leader', leader: this.selfIdentity(), epoch: stat.czxid, members });
        return;
      }
      const leaderNode = candidates[0] as CandidateNode;
      const predecessor = candidates[ownIndex - 1] as CandidateNode;
      // Followers learn the leader from the leader node, and wait on their predecessor only.
      const leader = await this.readCandidate(session, leaderNode.name, this.watcher);
      if (stale()) return;
      if (leader === 'unreadable') {
        // Live (ephemeral) but its ACL shuts us out: maybe a leader that does not know. Nobody
        // leads past it, and nobody deletes it (no watch tells its owner of an ACL change).
        this.checkFailed = true;
        this.emit('problem', `cannot read the lowest candidate ${leaderNode.name} (NOAUTH: its ACL was changed): no member leads until it is readable or gone`);
        this.suspend();
        clearTimeout(this.checkRetryTimer);
        this.checkRetryTimer = setTimeout(() => this.requestCheck(), checkRetryDelayMs(++this.failedChecks));
        return;
      }
      if (!leader) {
        this.checkAgain = true;
        return;
      }
      if (leader.stat.ephemeralOwner === '0') {
        // Persistent: no member's session owns it (made by hand to pose as the leader).
        this.rejectPersistent(leaderNode.name, leader.stat.version);
        this.checkAgain = true;
        return;
      }
      if (leader.stat.ephemeralOwner === session.sessionId) {
        // A node of this session that is not ours heads the queue (a create whose answer was
        // lost and not found again): the others would take it for our leadership. Remove it.
        this.log.warn({ node: leaderNode.name }, 'an orphan node of this session heads the election; deleting it');
        await session.delete(`${path}/${leaderNode.name}`);
        this.checkAgain = true;
        return;
      }
      if (leader.stat.version !== 0) {
        await this.blockedByTampered(session, leaderNode.name, leader.stat.version);
        return;
      }
      // The predecessor is read (and watched) unless our watch on it is still armed: then it
      // existed when the watch was set and no event of it has come since (one that is on its
      // way brings a check), as after a failover, where only the leader went.
      if (predecessor.name !== leaderNode.name && !session.isWatching(`${path}/${predecessor.name}`, this.watcher)) {
        // A get, not exists: a predecessor gone since the list leaves no watch behind (exists
        // would watch for a creation that never comes: one watch more for the session's life).
        const pred = await this.readCandidate(session, predecessor.name, this.watcher);
        if (stale()) return;
        if (!pred) {
          this.checkAgain = true;
          return;
        }
      }
      this.conclude(sent, { state: 'follower', leader: parseCandidateData(leader.data, leaderNode.name), epoch: leader.stat.czxid, members });
    } catch (err) {
      if (this.isStale(gen)) return;
      if (err instanceof ZooKeeperError && isConnectionProblem(err.code)) {
        // The connection handler steps down and the next (re)connection checks again.
        this.log.debug({ err: err.message }, 'check interrupted by the connection');
        return;
      }
      // An outcome we could not check is not one we can vouch for.
      const delay = checkRetryDelayMs(++this.failedChecks);
      this.log.error({ err: (err as Error).message, retryInMs: delay }, 'leadership check failed; stepping down and retrying');
      this.checkFailed = true;
      if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH) this.denied(this.noAuthMessage(err));
      else this.emit('problem', `election check failed: ${(err as Error).message}`);
      this.suspend();
      clearTimeout(this.checkRetryTimer);
      this.checkRetryTimer = setTimeout(() => this.requestCheck(), delay);
    }
  }

  /** A check decided: renew the lease from its synced reads and publish, unless they came too late. */
  private conclude(sentAt: number, outcome: Outcome): void {
    this.lease.renew(sentAt);
    this.failedChecks = 0;
    this.deniedMessage = null;
    if (this.checkFailed) {
      this.checkFailed = false;
      this.emit('problem', null);
    }
    if (!this.lease.valid(this.now())) {
      // The answers came too late, or after a pause: no renewal the quorum has surely heard of
      // is recent enough. Once this one is old enough to anchor the lease, check again.
      this.log.warn({ sentAt: new Date(sentAt).toISOString() }, 'no lease from this check (no renewal old enough to anchor it); checking again shortly');
      this.suspend();
      clearTimeout(this.checkRetryTimer);
      this.checkRetryTimer = setTimeout(() => this.requestCheck(), Math.ceil(this.lease.anchorAgeMs) + 10);
      return;
    }
    this.setState(outcome.state === 'leader' ? 'leader' : 'follower');
    this.publish(outcome);
  }

  /** Our node is gone or not ours: step down first (never lead on it), then join with a new node. */
  private rejoin(reason: string): void {
    this.log.warn({ node: this.ownNode, reason }, 'stepping down and joining the election again');
    this.suspend();
    this.ownNode = null;
    this.checkAgain = true;
  }

  /** Creates our candidate node, or finds the one a lost create answer left behind (the caller has synced). */
  private async join(session: ZooKeeperSession): Promise<void> {
    const path = this.options.electionPath;
    const prefix = candidatePrefix(this.uuid);
    if (this.createUncertain) {
      // No election node: the lost create was the one that found none (NONODE), nothing was made.
      const mine = (await childrenOrEmpty(session, path)).filter((name) => name.startsWith(prefix));
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
    const acl = await this.createAcl(session);
    const create = () => session.create(`${path}/${prefix}`, JSON.stringify(this.options.self), 'ephemeral-sequential', acl);
    this.createUncertain = true;
    let created: string;
    try {
      created = await create();
    } catch (err) {
      if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NONODE)) throw err;
      // The first member of the election: make its node (its ancestors exist, or are the
      // tenant's and refuse us), then join.
      this.createUncertain = false;
      await session.ensurePath(path, acl);
      this.createUncertain = true;
      created = await create();
    }
    this.createUncertain = false;
    this.ownNode = created.slice(created.lastIndexOf('/') + 1);
    this.log.info({ node: this.ownNode }, 'joined the election');
  }

  /**
   * The election's candidates in election order, for a check (after its sync). Listing them costs about 53 bytes
   * per member, and when the leader goes every follower checks at once: with 1,000 members,
   * 999 lists of 53 KB. So when a list is known, the check first reads, in this order, whether
   * the lowest node of that list still exists and the election node's stat; a session's
   * requests are answered in order. Every create and delete of a child moves the children's
   * version (cversion) by exactly one. If the version has not moved, the children are the known
   * list. If that lowest node is gone and the version moved by exactly one, that deletion —
   * which came after the list, since the list held the node — was the only change, and the
   * children are the known list without it. Anything else lists them. The version kept with a
   * list is read just before it (the two are sent back to back): a change in between makes
   * the version look older than the list, which only costs a list later, never a wrong one.
   */
  private async candidatesInOrder(session: ZooKeeperSession, path: string): Promise<readonly CandidateNode[]> {
    const known = this.knownChildren;
    const lowest = known?.ordered[0];
    if (known && lowest) {
      // A get of the election node, not exists: like the list it stands for, it needs READ, so
      // a member shut out of the election still fails its checks (NOAUTH) and says why.
      const [lowestStat, election] = await Promise.all([session.exists(`${path}/${lowest.name}`), session.get(path)]);
      const stat = election?.stat;
      const moved = stat && stat.czxid === known.czxid ? stat.cversion - known.cversion : null;
      if (stat && (moved === 0 || (moved === 1 && !lowestStat))) {
        const ordered = moved === 0 ? known.ordered : known.ordered.slice(1);
        if (moved === 1) this.identities.delete(lowest.name);
        this.knownChildren = { ordered, czxid: stat.czxid, cversion: stat.cversion };
        this.knownChildrenVersion = childrenVersion(stat);
        return ordered;
      }
    }
    const [listed, names] = await Promise.all([session.exists(path), childrenOrEmpty(session, path)]);
    const ordered = electionOrder(names);
    this.knownChildren = listed ? { ordered, czxid: listed.czxid, cversion: listed.cversion } : null;
    this.knownChildrenVersion = listed ? childrenVersion(listed) : '';
    return ordered;
  }

  /**
   * The identities of the candidates, in their order. Each candidate's node is read once, when
   * it is first seen; a check runs this for every candidate, so it allocates nothing per
   * candidate beyond the result (1,000 members: 999 checks of 1,000 each in a failover).
   */
  private async memberIdentities(session: ZooKeeperSession, candidates: readonly CandidateNode[]): Promise<MemberIdentity[]> {
    const missing: CandidateNode[] = [];
    for (const c of candidates) if (!this.identities.has(c.name) && !this.tampered.has(c.name)) missing.push(c);
    await Promise.all(
      missing.map(async (c) => {
        const node = await this.readCandidate(session, c.name);
        if (node === 'unreadable' || !node) return;
        // A changed candidate names whoever changed it, a persistent one nobody: not members we list.
        if (node.stat.ephemeralOwner === '0') this.rejectPersistent(c.name, node.stat.version);
        else if (node.stat.version !== 0) this.reportTampered(c.name, node.stat.version, c.name === this.ownNode);
        else this.identities.set(c.name, parseCandidateData(node.data, c.name));
      }),
    );
    for (const name of this.tampered.keys()) this.identities.delete(name);
    for (const name of this.notCandidates) this.identities.delete(name);
    const members: MemberIdentity[] = [];
    for (const c of candidates) {
      const id = this.identities.get(c.name);
      if (id) members.push(id);
    }
    // Every identity kept belongs to a distinct candidate: more are kept than were found only
    // when some belong to nodes gone since (forgotten here, so a name never comes back stale).
    if (this.identities.size > members.length) {
      const names = new Set(candidates.map((c) => c.name));
      for (const name of this.identities.keys()) if (!names.has(name)) this.identities.delete(name);
    }
    return members;
  }

  /**
   * A candidate's data and stat; null when gone. A node whose ACL shuts us out is classified
   * by its stat (exists needs no permission): persistent → not a candidate (reported);
   * ephemeral → 'unreadable'.
   */
  private async readCandidate(session: ZooKeeperSession, name: string, watch?: () => void): Promise<{ data: Buffer; stat: ZnodeStat } | null | 'unreadable'> {
    const path = `${this.options.electionPath}/${name}`;
    try {
      return await session.get(path, watch);
    } catch (err) {
      if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH)) throw err;
      const stat = await session.exists(path, watch);
      if (!stat) return null;
      if (stat.ephemeralOwner === '0') {
        this.rejectPersistent(name, stat.version);
        return null;
      }
      return 'unreadable';
    }
  }

  /** With a credential: nearestAcl of the election path (see there). Without: open nodes. */
  private async createAcl(session: ZooKeeperSession): Promise<readonly AclEntry[] | undefined> {
    if (this.credentials.length === 0) return undefined;
    return nearestAcl(session, this.options.electionPath);
  }

  private reportTampered(node: string, version: number, own: boolean): void {
    if (this.tampered.has(node)) return;
    this.tampered.set(node, this.now());
    this.log.warn({ node, version, own }, 'candidate node changed after its creation; ignored');
    this.emit('tampered', { node, version, own });
  }

  /** A persistent node named like a candidate: tampering too (members only make ephemeral ones); never a candidate. */
  private rejectPersistent(node: string, version: number): void {
    if (this.notCandidates.has(node)) return;
    this.notCandidates.add(node);
    this.identities.delete(node);
    this.log.warn({ node }, 'a persistent node poses as a candidate; ignored');
    this.emit('tampered', { node, version, own: false });
  }

  /**
   * The lowest candidate was changed after its creation. Nobody leads on it, and nobody
   * leads past it while its owner may still think it leads: never two leaders at once. Its
   * owner steps down and deletes it at once; one that does not (paused, or not a member at
   * all) has lost any lease the longest session timeout a member may have after we first saw
   * the change — its lease is at most 2/3 of its own and it renews only by checks, which step
   * down on the change — and then any member deletes it.
   */
  private async blockedByTampered(session: ZooKeeperSession, node: string, version: number): Promise<void> {
    this.reportTampered(node, version, false);
    const since = this.tampered.get(node) ?? this.now();
    const waitMs = since + Math.max(this.options.maxPeerSessionTimeoutMs ?? 40_000, this.sessionTimeoutMs()) - this.now();
    if (waitMs <= 0) {
      this.log.warn({ node, version }, 'the changed lowest candidate outlived a session timeout; deleting it');
      await session.delete(`${this.options.electionPath}/${node}`);
      this.checkAgain = true;
      return;
    }
    this.checkFailed = true;
    this.emit('problem', `the lowest candidate ${node} was changed after its creation (data version ${version}): no member leads until it is gone (its owner deletes it, or any member after ${Math.ceil(waitMs / 1000)} s)`);
    this.suspend();
    clearTimeout(this.checkRetryTimer);
    this.checkRetryTimer = setTimeout(() => this.requestCheck(), waitMs + 10);
  }

  /** Our node was changed after creation: step down first, delete it, join with a fresh one. */
  private async replaceTamperedOwnNode(session: ZooKeeperSession, version: number): Promise<void> {
    const node = this.ownNode as string;
    this.reportTampered(node, version, true);
    this.log.warn({ node, version }, 'own candidate node was changed after its creation; stepping down and joining again with a fresh node');
    this.suspend();
    this.ownNode = null;
    await session.delete(`${this.options.electionPath}/${node}`);
    this.checkAgain = true;
  }

  private noAuthMessage(err: ZooKeeperError): string {
    const namespace = this.options.self.namespace;
    const who = this.credentials.map((c) => c.user).join(', ');
    return who
      ? `ZooKeeper refused ${err.operation} ${err.path} to ${who} (NOAUTH): the password is wrong or was retired, or namespace ${namespace} has no tenant — an admin creates it with \`zkleader tenant add ${namespace}\``
      : `ZooKeeper refused ${err.operation} ${err.path} (NOAUTH): namespace ${namespace} is a tenant, and its members need its credential (--credential-file; webhook setting zookeeperAuth: required)`;
  }

  /** Access problem: on /readyz always, as an accessDenied event once per distinct message. */
  private denied(message: string): void {
    this.emit('problem', message);
    if (message === this.deniedMessage) return;
    this.deniedMessage = message;
    this.emit('accessDenied', message);
  }

  /**
   * A cheap synced read at least every quarter of the session timeout: renews the lease, notices
   * joins and leaves no watch of ours reports. It reads the election node (stat, empty data), a few bytes
   * however large the election; the children are listed (by a check) only when their version
   * moved since the last list, so at most once per heartbeat however many joined or left.
   */
  private async heartbeat(): Promise<void> {
    const session = this.session;
    const gen = this.generation;
    if (!session?.connected || this.checking || !this.ownNode || this.isStale(gen)) return;
    const sent = this.now();
    try {
      await session.sync(this.options.electionPath);
      // get, not exists: like the list it stands for it needs READ, so a member shut out of
      // the election (its ACL changed) stops renewing as before. The node's data is empty.
      const stat = (await session.get(this.options.electionPath))?.stat;
      // The state may have changed while the reads were out.
      if (this.isStale(gen) || !session.connected) return;
      if (!stat || childrenVersion(stat) !== this.knownChildrenVersion || this.electionState === 'suspended') {
        // A check running now (a watch fired) lists the children itself; a change it missed
        // is seen by the next heartbeat.
        if (!this.checking) this.requestCheck();
        return;
      }
      if ((this.electionState === 'leader' || this.electionState === 'follower') && this.snapshot) {
        this.lease.renew(sent);
        if (this.lease.valid(this.now())) this.publish(this.snapshot);
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  // --- the lease -------------------------------------------------------------------------------

  /** At validUntil, a decided outcome that was not renewed is withdrawn (see onLeaseLapsed). */
  private armLease(validUntil: Date): void {
    clearTimeout(this.leaseTimer);
    this.leaseTimer = setTimeout(() => this.onLeaseLapsed(), Math.max(0, validUntil.getTime() - this.now()));
  }

  /**
   * No renewal the quorum vouched for since renewedAt: the connection may look alive (a server
   * cut off from the quorum keeps answering pings and stale reads), but the quorum may already
   * have expired our session and elected someone else. Step down on our own, and check again.
   */
  private onLeaseLapsed(): void {
    const snapshot = this.snapshot;
    if (this.electionState === 'closed' || !snapshot?.validUntil || snapshot.state === 'unknown') return;
    if (snapshot.validUntil.getTime() > this.now()) {
      this.armLease(snapshot.validUntil);
      return;
    }
    this.log.warn({ state: snapshot.state, renewedAt: snapshot.renewedAt?.toISOString(), validUntil: snapshot.validUntil.toISOString() }, 'lease ran out without a synced renewal; stepping down');
    this.emit('problem', `no renewal vouched for by the ZooKeeper quorum since ${snapshot.renewedAt?.toISOString() ?? 'the start'}`);
    this.suspend();
    if (snapshot.isLeader) this.emit('leaseExpired', snapshot.validUntil);
    this.requestCheck();
  }

  // --- outcome ---------------------------------------------------------------------------------

  /** Closed is final: only stepDown() enters it, nothing leaves it. */
  private setState(state: ElectionState): void {
    if (this.electionState === 'closed' || this.electionState === state) return;
    this.log.debug({ from: this.electionState, to: state }, 'election state');
    this.electionState = state;
  }

  private selfIdentity(): MemberIdentity {
    const { pod, ip, uid, cluster } = this.options.self;
    return { pod, ip, uid, cluster: cluster ?? '' };
  }

  private publishUnknown(): void {
    // Nothing was decided yet: there is no outcome to withdraw.
    if (!this.snapshot || this.snapshot.state === 'unknown') return;
    this.publish({ state: 'unknown', leader: null, epoch: null, members: this.snapshot.members });
  }

  /** `final`: stepDown()'s own last word; after it (closed) nothing is published. */
  private publish(outcome: Outcome, final = false): void {
    if (this.electionState === 'closed' && !final) return;
    const previous = this.snapshot;
    const leaseEnd = this.lease.end();
    const renewedAt = this.lease.renewedAt;
    const draft: ElectionSnapshot = {
      state: outcome.state,
      leader: outcome.leader,
      epoch: outcome.epoch,
      members: outcome.members,
      isLeader: outcome.state === 'leader',
      since: new Date(this.now()),
      renewedAt: renewedAt === null ? null : new Date(renewedAt),
      validUntil: leaseEnd === null ? null : new Date(leaseEnd),
    };
    const changed = previous === null || !sameOutcome(previous, draft);
    const keepSince = previous !== null && previous.state === draft.state && previous.leader?.pod === draft.leader?.pod && previous.epoch === draft.epoch;
    const snapshot = keepSince ? { ...draft, since: previous.since } : draft;
    if (!changed && previous.renewedAt?.getTime() === snapshot.renewedAt?.getTime()) return;
    this.snapshot = snapshot;
    if (changed) {
      this.log.info({ state: snapshot.state, leader: snapshot.leader?.pod ?? null, epoch: snapshot.epoch, members: snapshot.members.length }, 'election outcome');
    }
    if (snapshot.validUntil && snapshot.state !== 'unknown' && !final) this.armLease(snapshot.validUntil);
    else clearTimeout(this.leaseTimer);
    this.emit('update', snapshot, changed);
  }
}

/** Moves with every child created or deleted; a node deleted and made again has another czxid. */
function childrenVersion(stat: ZnodeStat): string {
  return `${stat.czxid}:${stat.cversion}`;
}

function isConnectionProblem(code: number): boolean {
  return (
    code === ZooKeeperCode.CONNECTIONLOSS ||
    code === ZooKeeperCode.OPERATIONTIMEOUT ||
    code === ZooKeeperCode.SESSIONEXPIRED ||
    code === ZooKeeperCode.CLOSING
  );
}
