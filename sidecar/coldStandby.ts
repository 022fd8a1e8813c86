import type { Logger } from 'pino';
import type { ElectionSnapshot } from '../zookeeper/electionSnapshot.js';
import type { EventRecorder } from './eventRecorder.js';
import type { LeaderFileWriter } from './leaderFile.js';
import type { PodDeleter } from './podDeleter.js';
import type { PodLabeler } from './podLabeler.js';
import { StartGate, withdrawn } from './startGate.js';

export interface ColdStandbyOptions {
  /** The shared volume (the start marker lives there). */
  readonly dir: string;
  readonly pod: string;
  /** `<namespace>/<election>`, for messages. */
  readonly election: string;
  /** The election's latest snapshot. */
  readonly current: () => ElectionSnapshot | null;
  readonly files: LeaderFileWriter;
  readonly labeler: PodLabeler;
  readonly events: EventRecorder;
  readonly deleter: PodDeleter;
  readonly logger: Logger;
}

export interface ColdStandby {
  readonly gate: StartGate;
  /** A failing deletion, for /readyz and /startz (null when none). */
  problem(): string | null;
  /**
   * Before a graceful stop: if the app has started, deletes the own pod (uid precondition;
   * harmless when the pod is being deleted already), waiting at most `timeoutMs`.
   */
  stopping(timeoutMs: number): Promise<void>;
  /** Graceful stop: no step-down from here on is a loss, and no deletion is retried. */
  stop(): void;
}

/**
 * `--start leader` (DESIGN.md "Locks and semaphores", cold standby): the gate holds the app
 * back until this member leads; once a started leader has lost its leadership, the files
 * say `unknown` first, then the label says follower, an Event tells why, and the own pod is
 * deleted (retried until the API takes it). The election runs on: its node keeps the place
 * until the pod stops gracefully (app first, sidecar last), so nobody else starts leading
 * earlier than the election allows, and what the files show never claims leadership again.
 */
export function startColdStandby(options: ColdStandbyOptions): ColdStandby {
  const { files, labeler, events, deleter, logger } = options;
  const onLost = (reason: string): void => {
    const current = options.current();
    const withdrawnOnDisk = current ? files.write(withdrawn(current)) : Promise.resolve();
    labeler.desire('follower', null);
    const recorded = events.record(
      'LeadershipLostAfterStart',
      `${options.pod} lost the leadership of ${options.election} after its app started (${reason}); deleting the pod so that its controller replaces it with a new standby`,
    );
    // The Event first (it tells why the pod went), but never held up long by an API that does not answer.
    const eventOrTimeout = Promise.race([recorded.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    void Promise.all([withdrawnOnDisk, eventOrTimeout]).then(() => deleter.delete());
  };
  const gate = StartGate.open({ dir: options.dir, logger, onLost });
  return {
    gate,
    problem: () => deleter.problem,
    stopping: async (timeoutMs) => {
      if (!gate.started) return;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      logger.info('stopping after the app started: deleting the own pod first, so that its app stops with this leadership');
      await Promise.race([deleter.delete().then(() => undefined), timeout]).finally(() => clearTimeout(timer));
    },
    stop: () => {
      gate.stop();
      deleter.stop();
    },
  };
}
