import { readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ElectionSnapshot } from '../zookeeper/electionSnapshot.js';
import type { LeaderDocument } from './leaderFile.js';

/**
 * On the shared volume (an emptyDir: it lives as long as the pod): the app containers were
 * let start. A sidecar that finds it at its own start was restarted in a pod whose app is
 * running, and whatever leadership let that app start ended with the old process.
 */
export const STARTED_MARKER = '.zkleader-app-started';

export interface StartGateOptions {
  /** The shared volume's directory. */
  readonly dir: string;
  readonly logger: Logger;
  /** Called once, when a started leader has lost its leadership for good (the pod must go). */
  readonly onLost: (reason: string) => void;
  readonly now?: () => number;
}

export interface StartStatus {
  readonly started: boolean;
  /** Why not (yet) started, or what the gate says since; one line. */
  readonly reason: string;
}

/**
 * Cold standby (`--start leader`): the app containers start only once this member leads, and
 * a started leader that loses leadership must not keep running. A listener of the election's
 * snapshots and of what the leader files say, that changes nothing in the election.
 *
 * - started: the files said leader once (and the marker is on disk); /startz answers 200 from
 *   then on, and the kubelet lets the app containers start.
 * - lost: after the start, the leadership the app started under ended: another member leads,
 *   the member leads again under another epoch (its node was gone), the member's restart
 *   found the marker, or its lease ran out while it could not tell (unknown past validUntil).
 *   A disconnection that heals within the lease, with the same epoch, is no loss: nobody else
 *   can have led meanwhile. A graceful stop (stop()) is no loss either.
 * Before the start, losing and regaining a place in line is nothing to act on.
 */
export class StartGate {
  private startedEpoch: string | null = null;
  private latest: ElectionSnapshot | null = null;
  /** validUntil of the latest snapshot that said leader under startedEpoch. */
  private leaseEnd: number | null = null;
  private lapseTimer: NodeJS.Timeout | undefined;
  private lostReason: string | null = null;
  private stopped = false;
  private marking = false;
  private readonly now: () => number;

  private constructor(private readonly options: StartGateOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Reads the marker (once, at start): a sidecar restarted after its app started has lost
   * that leadership already, and onLost is called before this returns.
   */
  static open(options: StartGateOptions): StartGate {
    const gate = new StartGate(options);
    let marker: string | null = null;
    try {
      marker = readFileSync(join(options.dir, STARTED_MARKER), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (marker !== null) {
      gate.startedEpoch = marker.trim() || 'unknown';
      gate.lose(`the sidecar restarted after the app had started (under epoch ${gate.startedEpoch}): that leadership ended with the old process`);
    }
    return gate;
  }

  get started(): boolean {
    return this.startedEpoch !== null;
  }

  /** Why the pod is being deleted (null while it is not). */
  get lost(): string | null {
    return this.lostReason;
  }

  status(): StartStatus {
    if (this.lostReason !== null) return { started: true, reason: `started; leadership lost since: ${this.lostReason}` };
    if (this.startedEpoch !== null) return { started: true, reason: `started: this member leads (epoch ${this.startedEpoch})` };
    const leader = this.latest?.leader?.pod;
    const state = this.latest?.state ?? 'no election outcome yet';
    return { started: false, reason: `standby: the app starts once this member leads (${leader ? `the leader is ${leader}` : state})` };
  }

  /** Every snapshot of the election (renewals included), before the files are written. */
  observe(snapshot: ElectionSnapshot): void {
    if (this.stopped) return;
    this.latest = snapshot;
    if (this.startedEpoch === null || this.lostReason !== null) return;
    this.judge(snapshot);
  }

  /**
   * What the files say now (after each write): the first document on disk that says leader
   * starts the app, once the marker is written and the election still says the same.
   */
  async onDisk(doc: LeaderDocument | null): Promise<void> {
    if (this.stopped || this.startedEpoch !== null || this.marking || !doc?.isLeader || doc.epoch === null) return;
    this.marking = true;
    try {
      const path = join(this.options.dir, STARTED_MARKER);
      const temp = `${path}.${process.pid}.tmp`;
      await writeFile(temp, `${doc.epoch}\n`, { mode: 0o644 });
      await rename(temp, path);
      const current = this.latest;
      if (this.stopped || !current?.isLeader || current.epoch !== doc.epoch) {
        // Leadership moved on while the marker was written: the app never started.
        await rm(path, { force: true });
        return;
      }
      this.startedEpoch = doc.epoch;
      this.leaseEnd = current.validUntil?.getTime() ?? null;
      this.options.logger.info({ epoch: doc.epoch }, 'leader: the app containers may start (/startz answers 200)');
    } finally {
      this.marking = false;
    }
  }

  /**
   * What the files and label show: the snapshot itself, except that a member whose pod is
   * being deleted never claims leadership again (its app started under a leadership it lost).
   */
  shown(snapshot: ElectionSnapshot): ElectionSnapshot {
    if (this.lostReason === null || !snapshot.isLeader) return snapshot;
    return withdrawn(snapshot);
  }

  /** Graceful stop: the step-down that follows is no loss; nothing is judged any more. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.lapseTimer);
  }

  private judge(snapshot: ElectionSnapshot): void {
    if (snapshot.isLeader) {
      if (snapshot.epoch !== this.startedEpoch) {
        this.lose(`it leads again under epoch ${snapshot.epoch ?? '?'}, but the app started under epoch ${this.startedEpoch ?? '?'}: the leadership was interrupted`);
        return;
      }
      clearTimeout(this.lapseTimer);
      this.lapseTimer = undefined;
      this.leaseEnd = snapshot.validUntil?.getTime() ?? this.leaseEnd;
      return;
    }
    if (snapshot.state === 'follower') {
      this.lose(snapshot.leader ? `${snapshot.leader.pod} leads (epoch ${snapshot.epoch ?? '?'})` : 'its candidate node is gone');
      return;
    }
    // unknown: the leadership may come back within the lease; past it, someone else may lead.
    if (this.lapseTimer !== undefined) return;
    const leaseEnd = this.leaseEnd;
    const remaining = leaseEnd === null ? 0 : leaseEnd - this.now();
    const lapse = () => this.lose(`its lease ran out at ${leaseEnd === null ? 'an unknown time' : new Date(leaseEnd).toISOString()} before the election could vouch for it again`);
    if (remaining <= 0) lapse();
    else this.lapseTimer = setTimeout(lapse, remaining);
  }

  private lose(reason: string): void {
    if (this.lostReason !== null || this.stopped) return;
    clearTimeout(this.lapseTimer);
    this.lostReason = reason;
    this.options.logger.warn({ reason, epoch: this.startedEpoch }, 'leadership lost after the app started: the pod must be replaced');
    this.options.onLost(reason);
  }
}

/** The snapshot without its claim of leadership: unknown, no leader, no epoch. */
export function withdrawn(snapshot: ElectionSnapshot): ElectionSnapshot {
  return { ...snapshot, state: 'unknown', isLeader: false, leader: null, epoch: null };
}
