import type { Logger } from 'pino';
import { describeApiError, httpStatus, statusOf, withTimeout } from './kubernetesApiError.js';
import type { PodApi } from './kubernetesClient.js';

export interface PodDeleterOptions {
  readonly api: PodApi;
  readonly namespace: string;
  readonly pod: string;
  /** The own pod's uid: the delete's precondition, so a replacement of the same name (a StatefulSet's) is never hit. */
  readonly uid: string;
  readonly logger: Logger;
  /** Called for every failed request, with its HTTP status ("timeout"/"network" otherwise). */
  readonly onError?: (status: string) => void;
  readonly requestTimeoutMs?: number;
  readonly random?: () => number;
}

/** How a deletion ended. */
export type DeletionOutcome = 'deleted' | 'gone' | 'replaced' | 'stopped';

/** 1 s doubling to 30 s, with jitter (half to all of it). */
function retryDelayMs(failures: number, random: () => number): number {
  const base = Math.min(1000 * 2 ** Math.max(0, failures - 1), 30_000);
  return base / 2 + random() * (base / 2);
}

/**
 * Deletes the own pod (DELETE pods/<name> with a uid precondition), retrying with backoff
 * until the API takes it, the pod is gone (404), or a pod of the same name with another uid
 * stands there (409: ours is gone already); never throws, never gives up while running.
 * The workload controller then replaces the pod; the kubelet stops its containers, the app
 * first, in the pod's grace period.
 */
export class PodDeleter {
  private running: Promise<DeletionOutcome> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private problemText: string | null = null;

  constructor(private readonly options: PodDeleterOptions) {}

  /** The last failure, for /readyz and /startz (null when none). */
  get problem(): string | null {
    return this.problemText;
  }

  /** Starts deleting (once; later calls return the same outcome). */
  delete(): Promise<DeletionOutcome> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Ends the retries (graceful stop: the pod is going anyway). */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async loop(): Promise<DeletionOutcome> {
    const { api, namespace, pod, uid, logger } = this.options;
    const random = this.options.random ?? Math.random;
    let failures = 0;
    while (!this.stopped) {
      try {
        await withTimeout(api.deleteNamespacedPod({ name: pod, namespace, body: { preconditions: { uid } } }), this.options.requestTimeoutMs ?? 5000, 'delete pod');
        this.problemText = null;
        logger.info({ uid }, 'own pod deleted: the workload controller replaces it with a new standby');
        return 'deleted';
      } catch (err) {
        if (httpStatus(err) === 404) {
          logger.info({ uid }, 'own pod already gone');
          return 'gone';
        }
        if (httpStatus(err) === 409) {
          logger.info({ uid, err: describeApiError(err) }, 'own pod already gone: a pod of the same name with another uid stands there, and is left alone');
          return 'replaced';
        }
        failures++;
        this.options.onError?.(statusOf(err));
        const hint = httpStatus(err) === 403 ? ' (the service account needs delete on pods)' : '';
        this.problemText = `cannot delete the own pod after losing leadership: ${describeApiError(err)}${hint}; retrying`;
        logger.error({ err: describeApiError(err), failures }, `own pod deletion failed; retrying with backoff${hint}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, retryDelayMs(failures, random));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return 'stopped';
  }
}
