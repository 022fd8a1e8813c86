/** Who a candidate is, as stored in its znode and shown in leader.json. */
export interface MemberIdentity {
  readonly pod: string;
  readonly ip: string | null;
  readonly uid: string | null;
  /**
   * The member's cluster (sidecar --cluster, DESIGN.md "One election across clusters"); ""
   * for a member without one (its candidate data has no `cluster`: every member before it).
   */
  readonly cluster: string;
}

/**
 * The data of a candidate znode: `{pod, uid, ip, namespace, startedAt}`, and `cluster` only
 * when the member has one (so a member without one writes what every member wrote before).
 */
export interface CandidateData extends Omit<MemberIdentity, 'cluster'> {
  readonly namespace: string;
  readonly startedAt: string;
  readonly cluster?: string;
}

/** What the files say: the election's view, without its internal states. */
export type PublishedState = 'leader' | 'follower' | 'unknown';

/**
 * The election's outcome at one moment; every output (files, label, events, metrics,
 * HTTP) is derived from it and none of them feeds back into the election.
 */
export interface ElectionSnapshot {
  readonly state: PublishedState;
  readonly isLeader: boolean;
  readonly leader: MemberIdentity | null;
  /** The leader node's czxid as a decimal string; null while unknown. */
  readonly epoch: string | null;
  /** In election order (lowest sequence first). */
  readonly members: readonly MemberIdentity[];
  /** When this state (and leader) began. */
  readonly since: Date;
  /** Send time of the latest request ZooKeeper answered. */
  readonly renewedAt: Date | null;
  /** renewedAt + 2/3 of the session timeout: a leader must not act as leader past it. */
  readonly validUntil: Date | null;
}

/** Same state, leader, epoch and members: nothing but the lease times changed. */
export function sameOutcome(a: ElectionSnapshot, b: ElectionSnapshot): boolean {
  return (
    a.state === b.state &&
    a.epoch === b.epoch &&
    a.leader?.pod === b.leader?.pod &&
    a.leader?.cluster === b.leader?.cluster &&
    a.members.length === b.members.length &&
    a.members.every((m, i) => m.pod === b.members[i]?.pod && m.ip === b.members[i]?.ip && m.uid === b.members[i]?.uid && m.cluster === b.members[i]?.cluster)
  );
}

/** Parses candidate znode data, tolerating foreign or damaged nodes (they show as their node name). */
export function parseCandidateData(raw: Buffer, nodeName: string): MemberIdentity {
  try {
    const value = JSON.parse(raw.toString('utf8')) as Partial<Record<keyof CandidateData, unknown>>;
    if (typeof value.pod === 'string' && value.pod !== '') {
      return {
        pod: value.pod,
        ip: typeof value.ip === 'string' ? value.ip : null,
        uid: typeof value.uid === 'string' ? value.uid : null,
        cluster: typeof value.cluster === 'string' ? value.cluster : '',
      };
    }
  } catch {
    // not JSON: fall through
  }
  return { pod: nodeName, ip: null, uid: null, cluster: '' };
}
