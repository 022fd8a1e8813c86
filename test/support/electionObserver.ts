import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ZooKeeperCode, ZooKeeperError, ZooKeeperSession } from '../../zookeeper/session.js';
import { testAdminCredential } from './zookeeperEnsemble.js';

/** One candidate node of the election as the observer saw it. */
export interface ObservedCandidate {
  /** `<uuid>-n_<sequence>` */
  readonly node: string;
  /** Decimal string: the fencing token the node's owner publishes as its epoch while it leads. */
  readonly czxid: string;
  /** The `pod` of the node's data; null when the data is not the candidate JSON. */
  readonly pod: string | null;
  readonly firstSeenAt: number;
  /** When a poll first missed it; null while it exists. */
  readonly goneAt: number | null;
}

export interface ElectionObserverOptions {
  readonly connectString: string;
  /** `<root>/<namespace>/<election>`, e.g. `/zkleader/test/paused`. */
  readonly electionPath: string;
  /** Poll period (default 10 ms: a candidate node lives far longer than that before its owner can lead). */
  readonly intervalMs?: number;
  /** The observer's own session (default 10 s: longer than the members', so it outlives their faults). */
  readonly sessionTimeoutMs?: number;
}

interface MutableCandidate {
  node: string;
  czxid: string;
  pod: string | null;
  firstSeenAt: number;
  goneAt: number | null;
}

/**
 * A ZooKeeper client of its own, outside every member, that polls the election node's
 * children and records each candidate node's czxid and owner pod — the ground truth the
 * epochs in the members' files are checked against (epochIsCzxid). It only reads: it never
 * creates the election path or anything under it.
 */
export class ElectionObserver {
  private readonly candidates = new Map<string, MutableCandidate>();
  private session: ZooKeeperSession;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private lastErrorText: string | null = null;

  private constructor(private readonly options: ElectionObserverOptions) {
    this.session = this.openSession();
  }

  /** Connects, takes the first poll, and keeps polling until stop(). */
  static async start(options: ElectionObserverOptions): Promise<ElectionObserver> {
    const observer = new ElectionObserver(options);
    const connectTimeoutMs = 10_000;
    const timeout = sleep(connectTimeoutMs, 'timeout' as const, { ref: false });
    const connected = once(observer.session, 'connected').then(() => 'connected' as const);
    if ((await Promise.race([connected, timeout])) === 'timeout') {
      observer.session.close();
      throw new Error(`election observer: no ZooKeeper session with ${options.connectString} within ${connectTimeoutMs} ms`);
    }
    await observer.poll();
    observer.loop = observer.run();
    return observer;
  }

  /** Every candidate node seen so far, in the order first seen. */
  nodes(): ObservedCandidate[] {
    return [...this.candidates.values()].map((c) => ({ ...c }));
  }

  /** pod → the czxids of its candidate nodes (what epochIsCzxid takes). */
  czxidsByPod(): Map<string, string[]> {
    const byPod = new Map<string, string[]>();
    for (const c of this.candidates.values()) {
      if (c.pod === null) continue;
      byPod.set(c.pod, [...(byPod.get(c.pod) ?? []), c.czxid]);
    }
    return byPod;
  }

  /** The last failed poll's error (polls retry; a ZooKeeper outage is expected in fault tests). */
  get lastError(): string | null {
    return this.lastErrorText;
  }

  /** Lists the children once and records the new nodes and the ones gone. */
  async poll(): Promise<void> {
    if (this.session.closed && !this.stopped) this.session = this.openSession();
    const session = this.session;
    const path = this.options.electionPath;
    let children: string[];
    try {
      children = await session.getChildren(path);
    } catch (err) {
      // No member has created the election node yet.
      if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.NONODE) children = [];
      else throw err;
    }
    const at = Date.now();
    const present = new Set(children);
    await Promise.all(
      children
        .filter((name) => !this.candidates.has(name))
        .map(async (name) => {
          const node = await session.get(`${path}/${name}`);
          // Gone between the list and the read: its czxid is lost, but a node that short-lived never led.
          if (!node || this.candidates.has(name)) return;
          this.candidates.set(name, { node: name, czxid: node.stat.czxid, pod: podOf(node.data), firstSeenAt: at, goneAt: null });
        }),
    );
    for (const c of this.candidates.values()) if (c.goneAt === null && !present.has(c.node)) c.goneAt = at;
  }

  /** Stops polling after one last poll, and closes the session. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const limit = () => sleep(2000, undefined, { ref: false });
    // A poll hung on a paused or stopped server must not hold up the end of the test.
    await Promise.race([this.loop, limit()]);
    await Promise.race([this.poll().catch((err: unknown) => void (this.lastErrorText = String(err))), limit()]);
    this.session.close();
  }

  private openSession(): ZooKeeperSession {
    // As the test ensembles' superuser: it sees tenants' elections too (and changes nothing).
    return new ZooKeeperSession({ connectString: this.options.connectString, sessionTimeoutMs: this.options.sessionTimeoutMs ?? 10_000, credential: testAdminCredential });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await sleep(this.options.intervalMs ?? 10);
      if (this.stopped) return;
      try {
        await this.poll();
      } catch (err) {
        this.lastErrorText = (err as Error).message;
      }
    }
  }
}

function podOf(data: Buffer): string | null {
  try {
    const value = JSON.parse(data.toString('utf8')) as { pod?: unknown };
    return typeof value.pod === 'string' && value.pod !== '' ? value.pod : null;
  } catch {
    return null;
  }
}
