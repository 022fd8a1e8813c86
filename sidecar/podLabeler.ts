import type { ConfigurationOptions, Observable, RequestContext, ResponseContext, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, httpStatus, isRetriable, statusOf, withTimeout } from './kubernetesApiError.js';
import type { PodApi } from './kubernetesClient.js';

export const roleLabel = 'zkleader.io/role';
export const electionLabel = 'zkleader.io/election';
export const epochAnnotation = 'zkleader.io/leader-epoch';

export type Role = 'leader' | 'follower';

interface Desired {
  readonly role: Role;
  readonly epoch: string | null;
  /**
   * A follower whose leader is in another cluster: that leadership's epoch. Pods of this
   * cluster still labelled leader with a lower epoch (or none) are stale, and no leader here
   * will demote them: this member does (DESIGN.md "One election across clusters").
   */
  readonly foreignEpoch: string | null;
}

export interface PodLabelerOptions {
  readonly api: PodApi;
  readonly namespace: string;
  readonly pod: string;
  readonly election: string;
  readonly logger: Logger;
  /** Called for every failed API request, with its HTTP status ("timeout"/"network" otherwise). */
  readonly onError?: (status: string) => void;
  readonly requestTimeoutMs?: number;
  readonly random?: () => number;
}

/**
 * A JSON merge patch: what client-node's setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
 * makes, written out so that no client-node code is loaded for it. The sidecar's own client
 * (kubernetesClient.ts) sends every patch as one and ignores this.
 */
const mergePatch: ConfigurationOptions = {
  middleware: [
    {
      // client-node's Observable is a promise holder: its middleware chain calls only toPromise().
      pre: (context: RequestContext) => {
        context.setHeaderParam('Content-Type', 'application/merge-patch+json');
        return { toPromise: () => Promise.resolve(context) } as unknown as Observable<RequestContext>;
      },
      post: (response: ResponseContext) => ({ toPromise: () => Promise.resolve(response) }) as unknown as Observable<ResponseContext>,
    },
  ],
  middlewareMergeStrategy: 'append',
};

/**
 * Keeps the pod's `zkleader.io/role` label (and the epoch annotation on the leader) at the
 * latest desired value. Runs beside the election and never holds it up: failures are retried
 * with jittered backoff, and only the newest desired state is ever applied.
 */
export class PodLabeler {
  private desired: Desired | null = null;
  private applied: Desired | null = null;
  private running = false;
  private wake: (() => void) | null = null;
  private failures = 0;
  private stopped = false;
  /** The patch being sent now (the last step of apply), if any. */
  private inFlight: Promise<unknown> | null = null;
  private problemText: string | null = null;
  private readonly settledWaiters = new Set<() => void>();

  constructor(private readonly options: PodLabelerOptions) {}

  /** The current API problem for /readyz (null when the last request succeeded). */
  get problem(): string | null {
    return this.problemText;
  }

  /** `foreignLeaderEpoch`: as a follower of a leader in another cluster, its epoch (see Desired). */
  desire(role: Role, epoch: string | null, foreignLeaderEpoch: string | null = null): void {
    if (this.stopped) return;
    this.desired = { role, epoch: role === 'leader' ? epoch : null, foreignEpoch: role === 'follower' ? foreignLeaderEpoch : null };
    if (this.running) {
      this.wake?.();
      return;
    }
    this.running = true;
    void this.loop();
  }

  /**
   * Ends the retry loop (graceful stop): a request in flight may still finish, but no
   * retry is scheduled, so an API that keeps failing cannot keep the process alive.
   */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /**
   * After stop(), when the retries did not get the latest state through: one last attempt
   * within `timeoutMs`, after the request in flight (so an older patch cannot land after it).
   * Never throws; resolves true when the patch was applied.
   */
  async finalPatch(timeoutMs: number): Promise<boolean> {
    const target = this.desired;
    if (!target || this.isSettled()) return true;
    const deadline = Date.now() + timeoutMs;
    if (this.inFlight) await Promise.race([this.inFlight.catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    try {
      await this.patchOwn(target, Math.max(1, deadline - Date.now()));
      this.applied = target;
      return true;
    } catch (err) {
      this.options.logger.warn({ role: target.role, err: describeApiError(err) }, 'last pod label update on stop failed');
      return false;
    }
  }

  /** Resolves true once the latest desired state is applied, false after `timeoutMs`. */
  settled(timeoutMs: number): Promise<boolean> {
    if (this.isSettled()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.settledWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.settledWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.settledWaiters.add(done);
    });
  }

  private isSettled(): boolean {
    return this.desired === null || (this.sameOwnLabels(this.applied, this.desired) && this.applied?.foreignEpoch === this.desired.foreignEpoch);
  }

  private sameOwnLabels(a: Desired | null, b: Desired): boolean {
    return a?.role === b.role && a.epoch === b.epoch;
  }

  private async loop(): Promise<void> {
    try {
      while (this.desired && !this.isSettled() && !this.stopped) {
        const target = this.desired;
        try {
          await this.apply(target);
          this.applied = target;
          this.failures = 0;
          this.problemText = null;
        } catch (err) {
          const status = statusOf(err);
          this.options.onError?.(status);
          const problem = `Kubernetes API: ${describeApiError(err)} while labelling pod ${this.options.namespace}/${this.options.pod}`;
          const repeated = problem === this.problemText;
          this.problemText = problem;
          this.failures++;
          const delay = this.backoffMs(isRetriable(err));
          // One clear error per problem; its retries (counted in the metrics) only at debug.
          const fields = { status, err: describeApiError(err), retryInMs: Math.round(delay), failures: this.failures };
          if (repeated) this.options.logger.debug(fields, 'pod label update failed again; retrying');
          else this.options.logger.error(fields, 'pod label update failed; retrying');
          if (!this.stopped) await this.sleep(delay);
        }
      }
    } finally {
      this.running = false;
      if (this.isSettled()) for (const done of [...this.settledWaiters]) done();
      else if (this.desired && !this.stopped) this.desire(this.desired.role, this.desired.epoch, this.desired.foreignEpoch);
    }
  }

  private async apply(target: Desired): Promise<void> {
    const timeout = this.options.requestTimeoutMs ?? 5000;
    // Stale leader labels go first, so that two pods never carry `leader` at once.
    if (target.role === 'leader') await this.demoteOthers(timeout);
    else if (target.foreignEpoch !== null) await this.demoteStale(target.foreignEpoch, timeout);
    // Only the demotion changed (a new leader in another cluster): our own labels are in place.
    if (this.sameOwnLabels(this.applied, target)) return;
    const patch = this.patchOwn(target, timeout);
    this.inFlight = patch;
    try {
      await patch;
    } finally {
      if (this.inFlight === patch) this.inFlight = null;
    }
  }

  private async patchOwn(target: Desired, timeoutMs: number): Promise<void> {
    const { api, namespace, pod } = this.options;
    const body = { metadata: { labels: { [roleLabel]: target.role }, annotations: { [epochAnnotation]: target.epoch } } };
    await withTimeout(api.patchNamespacedPod({ name: pod, namespace, body }, mergePatch), timeoutMs, `patch pod ${namespace}/${pod}`);
    this.options.logger.info({ role: target.role, epoch: target.epoch }, 'pod labelled');
  }

  /**
   * Checks that the labels still say what was applied, and applies them again when not:
   * another pod's token may demote this pod or, on its own pod, claim `leader` (the
   * ValidatingAdmissionPolicy allows both, to let a new leader demote a crashed one). A
   * follower reads its own pod; the leader lists the election's pods labelled leader. Called
   * on a timer; an API failure here only waits for the next call.
   */
  async reconcile(): Promise<boolean> {
    const target = this.desired;
    if (this.stopped || !target || !this.isSettled() || this.running) return false;
    const { api, namespace, pod, election } = this.options;
    const timeout = this.options.requestTimeoutMs ?? 5000;
    try {
      let drift: string | null = null;
      if (target.role === 'leader') {
        const leaders = await withTimeout(api.listNamespacedPod({ namespace, labelSelector: `${electionLabel}=${election},${roleLabel}=leader` }), timeout, `list pods in ${namespace}`);
        const others = leaders.items.map((p) => p.metadata?.name).filter((name) => name && name !== pod);
        const own = leaders.items.find((p) => p.metadata?.name === pod);
        if (others.length > 0) drift = `pods ${others.join(', ')} are labelled leader`;
        else if (!own) drift = 'this pod lost its leader label';
        else if ((own.metadata?.annotations?.[epochAnnotation] ?? null) !== target.epoch) drift = 'this pod lost its epoch annotation';
      } else {
        const own = await withTimeout(api.readNamespacedPod({ name: pod, namespace }), timeout, `get pod ${namespace}/${pod}`);
        const role = own.metadata?.labels?.[roleLabel];
        if (role !== target.role || (own.metadata?.annotations?.[epochAnnotation] ?? null) !== null) drift = `this pod is labelled ${role ?? 'nothing'}`;
        else if (target.foreignEpoch !== null) {
          const stale = (await this.labelledLeaders(timeout)).filter((p) => this.staleAgainst(p, target.foreignEpoch as string));
          if (stale.length > 0) drift = `pods ${stale.map((p) => p.metadata?.name).join(', ')} are labelled leader while the leader is in another cluster`;
        }
      }
      if (drift === null || this.desired !== target) return false;
      this.options.logger.warn({ role: target.role, drift }, 'pod labels were changed by someone else; applying them again');
      this.applied = null;
      this.desire(target.role, target.epoch, target.foreignEpoch);
      return true;
    } catch (err) {
      this.options.logger.debug({ err: describeApiError(err) }, 'label check failed; next time');
      return false;
    }
  }

  /** The pods of the election in this cluster's API labelled leader (this pod included). */
  private async labelledLeaders(timeout: number): Promise<V1Pod[]> {
    const { api, namespace, election } = this.options;
    const list = await withTimeout(api.listNamespacedPod({ namespace, labelSelector: `${electionLabel}=${election},${roleLabel}=leader` }), timeout, `list pods in ${namespace}`);
    return list.items;
  }

  /**
   * Another pod of this cluster labelled leader is stale when its epoch annotation is missing
   * or not above the epoch of the leadership in the other cluster. One with a higher epoch leads
   * after that one: our view is the older, and the next outcome will say so. Never decided by
   * the leader's pod name: a pod of this cluster may carry the same name.
   */
  private staleAgainst(other: V1Pod, foreignEpoch: string): boolean {
    const name = other.metadata?.name;
    if (!name || name === this.options.pod) return false;
    const epoch = other.metadata?.annotations?.[epochAnnotation];
    // The same epoch is the other cluster's leader's own: a pod here carrying it is no leader.
    return epoch === undefined || !/^\d+$/.test(epoch) || BigInt(epoch) <= BigInt(foreignEpoch);
  }

  /**
   * The leader is in another cluster: a pod of this cluster labelled leader is a crashed
   * sidecar's leftover that no leader here demotes. Every follower here does (the same patch).
   */
  private async demoteStale(foreignEpoch: string, timeout: number): Promise<void> {
    const stale = (await this.labelledLeaders(timeout)).filter((p) => this.staleAgainst(p, foreignEpoch));
    await this.demote(stale, timeout, true, { leaderEpoch: foreignEpoch, leaderCluster: 'another' });
  }

  /** A crashed leader's sidecar cannot remove its own label: the new leader does. */
  private async demoteOthers(timeout: number): Promise<void> {
    const others = (await this.labelledLeaders(timeout)).filter((p) => p.metadata?.name !== this.options.pod);
    await this.demote(others, timeout, false, {});
  }

  /**
   * `ifUnchanged`: only the pod as listed (its resourceVersion); a pod changed since — a
   * member of this cluster that leads again, with a higher epoch — is left to the next
   * outcome or label check, not demoted on an older view.
   */
  private async demote(pods: readonly V1Pod[], timeout: number, ifUnchanged: boolean, fields: Record<string, string>): Promise<void> {
    const { api, namespace } = this.options;
    for (const other of pods) {
      const name = other.metadata?.name;
      if (!name) continue;
      const resourceVersion = ifUnchanged ? other.metadata?.resourceVersion : undefined;
      const body = { metadata: { labels: { [roleLabel]: 'follower' }, annotations: { [epochAnnotation]: null }, ...(resourceVersion !== undefined && { resourceVersion }) } };
      try {
        await withTimeout(api.patchNamespacedPod({ name, namespace, body }, mergePatch), timeout, `patch pod ${namespace}/${name}`);
        this.options.logger.info({ demoted: name, ...fields }, 'demoted a stale leader label');
      } catch (err) {
        // The pod may be gone (or, with ifUnchanged, changed: 409); any other failure retries the whole apply.
        if (!(httpStatus(err) === 404 || (ifUnchanged && httpStatus(err) === 409))) throw err;
      }
    }
  }

  private backoffMs(retriable: boolean): number {
    // Permission errors will not heal by themselves soon: retry rarely, in case RBAC is fixed.
    const cap = retriable ? 5000 : 30000;
    const base = Math.min(cap, 200 * 2 ** Math.min(this.failures - 1, 10));
    const random = this.options.random ?? Math.random;
    return base / 2 + random() * (base / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        resolve();
      }
      // A new desired state ends the wait: it is the one to apply now.
      this.wake = () => {
        this.wake = null;
        finish();
      };
    });
  }
}
