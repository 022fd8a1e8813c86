import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ElectionSnapshot, MemberIdentity, PublishedState } from '../zookeeper/electionSnapshot.js';

/** The leader.json document (DESIGN.md "Files on the shared volume"). */
export interface LeaderDocument {
  readonly election: string;
  readonly state: PublishedState;
  readonly isLeader: boolean;
  readonly self: MemberIdentity;
  readonly leader: MemberIdentity | null;
  readonly epoch: string | null;
  readonly members: readonly MemberIdentity[];
  readonly since: string;
  readonly renewedAt: string | null;
  readonly validUntil: string | null;
}

export function leaderDocument(election: string, self: MemberIdentity, snapshot: ElectionSnapshot): LeaderDocument {
  return {
    election,
    state: snapshot.state,
    isLeader: snapshot.isLeader,
    self,
    leader: snapshot.leader,
    epoch: snapshot.epoch,
    members: snapshot.members,
    since: snapshot.since.toISOString(),
    renewedAt: snapshot.renewedAt?.toISOString() ?? null,
    validUntil: snapshot.validUntil?.toISOString() ?? null,
  };
}

/**
 * Writes `leader` and `leader.json` in `dir`, each atomically (temporary file in the same
 * directory, then rename), one write at a time; while one runs only the newest snapshot waits.
 */
export class LeaderFileWriter {
  private pending: LeaderDocument | null = null;
  private running: Promise<void> | null = null;
  private last: LeaderDocument | null = null;
  private lastError: Error | null = null;
  private counter = 0;

  constructor(
    private readonly dir: string,
    private readonly election: string,
    private readonly self: MemberIdentity,
  ) {}

  /** The last document on disk (null before the first write). */
  get written(): LeaderDocument | null {
    return this.last;
  }

  /** The last write error, cleared by a successful write. */
  get error(): Error | null {
    return this.lastError;
  }

  write(snapshot: ElectionSnapshot): Promise<void> {
    this.pending = leaderDocument(this.election, this.self, snapshot);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Resolves when everything handed to write() is on disk (or failed). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const doc = this.pending;
      this.pending = null;
      try {
        await mkdir(this.dir, { recursive: true });
        const json = (): Promise<void> => this.atomicWrite('leader.json', `${JSON.stringify(doc, null, 2)}\n`);
        const name = (): Promise<void> => this.atomicWrite('leader', doc.leader ? `${doc.leader.pod}\n` : '');
        // A claim of leadership is made last and withdrawn first: leader.json's isLeader never
        // says more than the `leader` file beside it.
        if (doc.isLeader) {
          await name();
          await json();
        } else {
          await json();
          await name();
        }
        this.last = doc;
        this.lastError = null;
      } catch (err) {
        this.lastError = err as Error;
      }
    }
  }

  private async atomicWrite(name: string, content: string): Promise<void> {
    const temp = join(this.dir, `.${name}.${process.pid}.${this.counter++}.tmp`);
    await writeFile(temp, content, { mode: 0o644 });
    await rename(temp, join(this.dir, name));
  }
}
