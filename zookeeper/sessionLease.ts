/**
 * The lease of a ZooKeeper session's member (an election's leader, a lock's holder): how
 * long it may act on what it last checked, without a renewal the quorum vouched for.
 *
 * A renewal is a read that follows a `sync`, dated when the sync was sent. A completed sync
 * proves the session alive, but its own touch reaches the quorum's leader only with the
 * follower's next ping answer (every tickTime/2), and a server cut off right after the sync
 * never sends it. The touch of an earlier renewal, one sent at least T/6 before the latest
 * (tickTime/2 ≤ T/6 under the lease condition), was reported before the latest sync went
 * through; the session's creation, a write through the leader, counts likewise. The quorum
 * expires the session no earlier than T after that anchor: the lease ends at
 * anchor + 2/3 T, a third of T before.
 *
 * Pure: times are what the caller's clock said; T is asked for each time (the session
 * timeout in force, the shorter of what was asked for and what the server granted).
 */
export class SessionLease {
  private renewedAtMs: number | null = null;
  /** When the current session's handle was made: its creation, a write through the quorum's leader, came later. */
  private sessionStartedAt = 0;
  /** Send times of the current session's renewals, oldest first (the last few). */
  private renewals: number[] = [];

  constructor(private readonly timeoutMs: () => number) {}

  /** A new session: no lease until it renews (the last session's ended with it). */
  newSession(startedAt: number): void {
    this.sessionStartedAt = startedAt;
    this.renewals = [];
  }

  /** The latest renewal's send time, of any session (null: never renewed). */
  get renewedAt(): number | null {
    return this.renewedAtMs;
  }

  /** Two thirds of T. */
  get durationMs(): number {
    return Math.floor((this.timeoutMs() * 2) / 3);
  }

  /** How much older than the latest renewal one must be to anchor the lease: T/6 ≥ tickTime/2. */
  get anchorAgeMs(): number {
    return this.timeoutMs() / 6;
  }

  renew(sentAt: number): void {
    this.renewedAtMs = Math.max(this.renewedAtMs ?? 0, sentAt);
    const renewals = [...this.renewals, sentAt].sort((a, b) => a - b);
    // Only the newest renewal that can anchor the lease (see end) and those after it matter.
    const cutoff = this.renewedAtMs - this.anchorAgeMs;
    let newestAnchor = -1;
    renewals.forEach((sent, i) => {
      if (sent <= cutoff) newestAnchor = i;
    });
    this.renewals = renewals.slice(Math.max(0, newestAnchor));
  }

  /** When the lease ends (null: no renewal in this session yet, no lease). */
  end(): number | null {
    if (this.renewedAtMs === null || this.renewals.length === 0) return null;
    const cutoff = this.renewedAtMs - this.anchorAgeMs;
    let anchor = this.sessionStartedAt;
    for (const sent of this.renewals) if (sent <= cutoff) anchor = Math.max(anchor, sent);
    return anchor + this.durationMs;
  }

  valid(now: number): boolean {
    const end = this.end();
    return end !== null && end > now;
  }
}
