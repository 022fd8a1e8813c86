import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConnectionState } from '../zookeeper/election.js';
import type { ElectionSnapshot } from '../zookeeper/electionSnapshot.js';

const connectionStates: readonly ConnectionState[] = ['connecting', 'connected', 'disconnected'];

/** The sidecar's Prometheus metrics, in a registry of its own. */
export class SidecarMetrics {
  readonly registry = new Registry();
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
    const registers = [this.registry];
    this.isLeader = new Gauge({ name: 'zkleader_is_leader', help: '1 while this member is the leader, else 0', registers });
    this.transitions = new Counter({
      name: 'zkleader_leadership_transitions_total',
      help: 'Changes of the published election state (leader, follower, unknown)',
      labelNames: ['to'],
      registers,
    });
    this.connection = new Gauge({
      name: 'zkleader_zookeeper_connection_state',
      help: 'ZooKeeper connection state of this member (1 for the current state)',
      labelNames: ['state'],
      registers,
    });
    this.labelErrors = new Counter({
      name: 'zkleader_label_patch_errors_total',
      help: 'Failed Kubernetes API requests labelling pods, by HTTP status ("timeout", "network" without one)',
      labelNames: ['status'],
      registers,
    });
    this.eventErrors = new Counter({
      name: 'zkleader_event_errors_total',
      help: 'Kubernetes Events that could not be created, by HTTP status',
      labelNames: ['status'],
      registers,
    });
    this.tampered = new Counter({
      name: 'zkleader_candidate_tampered_total',
      help: 'Candidate nodes found changed after their creation (data version not 0), own="true" for this member\'s own node',
      labelNames: ['own'],
      registers,
    });
    this.accessDenied = new Counter({
      name: 'zkleader_zookeeper_access_denied_total',
      help: 'Times ZooKeeper refused this member (NOAUTH) or its credential could not be read (a new reason each)',
      registers,
    });
    this.configVersion = new Gauge({ name: 'zkleader_config_version', help: 'The version of each config on disk', labelNames: ['config'], registers });
    this.configUpdates = new Counter({ name: 'zkleader_config_updates_total', help: 'Config versions written to disk', labelNames: ['config'], registers });
    // Includes nodejs_eventloop_lag_seconds and friends (event-loop lag, memory, CPU).
    collectDefaultMetrics({ register: this.registry });
    this.isLeader.set(0);
    this.setConnection('connecting');
  }

  observe(snapshot: ElectionSnapshot): void {
    this.isLeader.set(snapshot.isLeader ? 1 : 0);
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
