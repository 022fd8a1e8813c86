import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, statusOf, withTimeout } from './kubernetesApiError.js';
import type { PodApi } from './kubernetesClient.js';

export interface PodReference {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | null;
}

export type LeadershipReason = 'LeaderElected' | 'LeadershipLost' | 'LeaseExpired' | 'CandidateTampered' | 'ZooKeeperAccessDenied' | 'ConfigUpdated' | 'LeadershipLostAfterStart';

/** Reasons that need someone's attention: Events of type Warning. */
const warnings: ReadonlySet<LeadershipReason> = new Set(['CandidateTampered', 'ZooKeeperAccessDenied', 'LeadershipLostAfterStart']);

/**
 * Records a Kubernetes Event on the own pod when it gains or loses leadership. Best effort:
 * an Event that cannot be created is logged and counted, never retried, never waited for by
 * the election.
 */
export class EventRecorder {
  private sequence = 0;

  constructor(
    private readonly api: PodApi,
    private readonly pod: PodReference,
    private readonly logger: Logger,
    private readonly onError?: (status: string) => void,
  ) {}

  record(reason: LeadershipReason, message: string): Promise<void> {
    const now = new Date();
    const body: CoreV1Event = {
      metadata: { name: `${this.pod.name}.${now.getTime().toString(16)}${(this.sequence++).toString(16)}`, namespace: this.pod.namespace },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        namespace: this.pod.namespace,
        name: this.pod.name,
        ...(this.pod.uid !== null && { uid: this.pod.uid }),
      },
      reason,
      message,
      type: warnings.has(reason) ? 'Warning' : 'Normal',
      source: { component: 'zkleader' },
      reportingComponent: 'zkleader.io/sidecar',
      reportingInstance: this.pod.name,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    return withTimeout(this.api.createNamespacedEvent({ namespace: this.pod.namespace, body }), 5000, 'create event').then(
      () => undefined,
      (err: unknown) => {
        this.onError?.(statusOf(err));
        this.logger.warn({ reason, err: describeApiError(err) }, 'could not record a Kubernetes Event');
      },
    );
  }
}
