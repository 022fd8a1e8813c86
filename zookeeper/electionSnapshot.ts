/** Who a candidate is, as stored in its znode and shown in leader.json. */
export interface MemberIdentity {
  readonly pod: string;
  readonly ip: string | null;
  readonly uid: string | null;
}

/** The data of a candidate znode: `{pod, uid, ip, namespace, startedAt}`. */
export interface CandidateData extends MemberIdentity {
  readonly namespace: string;
  readonly startedAt: string;
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
    a.members.length === b.members.length &&
    a.members.every((m, i) => m.pod === b.members[i]?.pod && m.ip === b.members[i]?.ip && m.uid === b.members[i]?.uid)
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
      };
    }
  } catch {
    // not JSON: fall through
  }
  return { pod: nodeName, ip: null, uid: null };
}
