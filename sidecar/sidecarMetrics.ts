import { addProcessMetrics, Counter, Gauge, MetricRegistry } from './prometheusText.js';
import type { ConnectionState } from '../zookeeper/election.js';
import type { ElectionSnapshot } from '../zookeeper/electionSnapshot.js';

const connectionStates: readonly ConnectionState[] = ['connecting', 'connected', 'disconnected'];

/** The sidecar's Prometheus metrics, in a registry of its own (prometheusText.ts: no prom-client in the sidecar). */
export class SidecarMetrics {
  readonly registry = new MetricRegistry();
  private readonly isLeader: Gauge;
  private readonly transitions: Counter<'to'>;
  private readonly connection: Gauge<'state'>;
  private readonly labelErrors: Counter<'status'>;
  private readonly eventErrors: Counter<'status'>;
  private readonly tampered: Counter<'own'>;
  private readonly accessDenied: Counter;
  private readonly configVersion: Gauge<'config'>;
  private readonly configUpdates: Counter<'config'>;
  private lastState: string | null = null;

  constructor() {
    const r = this.registry;
    this.isLeader = r.add(new Gauge('zkleader_is_leader', '1 while this member is the leader, else 0'));
    this.transitions = r.add(new Counter('zkleader_leadership_transitions_total', 'Changes of the published election state (leader, follower, unknown)', ['to']));
    this.connection = r.add(new Gauge('zkleader_zookeeper_connection_state', 'ZooKeeper connection state of this member (1 for the current state)', ['state']));
    this.labelErrors = r.add(new Counter('zkleader_label_patch_errors_total', 'Failed Kubernetes API requests labelling pods, by HTTP status ("timeout", "network" without one)', ['status']));
    this.eventErrors = r.add(new Counter('zkleader_event_errors_total', 'Kubernetes Events that could not be created, by HTTP status', ['status']));
    this.tampered = r.add(
      new Counter('zkleader_candidate_tampered_total', 'Candidate nodes found changed after their creation (data version not 0), own="true" for this member\'s own node', ['own']),
    );
    this.accessDenied = r.add(new Counter('zkleader_zookeeper_access_denied_total', 'Times ZooKeeper refused this member (NOAUTH) or its credential could not be read (a new reason each)'));
    this.configVersion = r.add(new Gauge('zkleader_config_version', 'The version of each config on disk', ['config']));
    this.configUpdates = r.add(new Counter('zkleader_config_updates_total', 'Config versions written to disk', ['config']));
    // CPU, memory, heap, event-loop lag (nodejs_eventloop_lag_seconds), under prom-client's names.
    addProcessMetrics(r);
    this.isLeader.set(undefined, 0);
    this.setConnection('connecting');
  }

  observe(snapshot: ElectionSnapshot): void {
    this.isLeader.set(undefined, snapshot.isLeader ? 1 : 0);
    if (snapshot.state !== this.lastState) {
      this.transitions.inc({ to: snapshot.state });
      this.lastState = snapshot.state;
    }
  }

  setConnection(state: ConnectionState): void {
    for (const s of connectionStates) this.connection.set({ state: s }, s === state ? 1 : 0);
  }

  labelPatchError(status: string): void {
    this.labelErrors.inc({ status });
  }

  eventError(status: string): void {
    this.eventErrors.inc({ status });
  }

  candidateTampered(own: boolean): void {
    this.tampered.inc({ own: String(own) });
  }

  zookeeperAccessDenied(): void {
    this.accessDenied.inc();
  }

  configUpdated(config: string, version: number): void {
    this.configVersion.set({ config }, version);
    this.configUpdates.inc({ config });
  }
}
