import { electionOrder } from './candidateNode.js';
import { parseCandidateData, type MemberIdentity } from './electionSnapshot.js';
import { childrenOrEmpty, ZooKeeperCode, ZooKeeperError, type ZooKeeperSession } from './session.js';

/** One candidate as `zkleader status` shows it. */
export interface CandidateStatus extends MemberIdentity {
  readonly node: string;
  /** The owning session, decimal. */
  readonly sessionId: string;
  /** Its data was changed after creation (data version not 0): no member follows it. */
  readonly tampered: boolean;
}

/**
 * One election: `<namespace>/<name>`, its leader (the lowest candidate, none while that one
 * is tampered: the members wait for it to go) and epoch.
 */
export interface ElectionStatus {
  readonly election: string;
  readonly leader: CandidateStatus | null;
  /** The leader node's czxid (the fencing token the leader's files carry). */
  readonly epoch: string | null;
  /** In election order. */
  readonly candidates: readonly CandidateStatus[];
}

/** Reads one election; candidates that leave while it reads are left out. */
export async function readElection(session: ZooKeeperSession, root: string, namespace: string, name: string): Promise<ElectionStatus> {
  const path = `${root}/${namespace}/${name}`;
  const ordered = electionOrder(await childrenOrEmpty(session, path));
  const read = await Promise.all(ordered.map(async (c) => ({ c, node: await session.get(`${path}/${c.name}`) })));
  const candidates: { status: CandidateStatus; czxid: string }[] = [];
  for (const { c, node } of read) {
    if (!node) continue;
    const tampered = node.stat.version !== 0;
    candidates.push({ status: { node: c.name, sessionId: node.stat.ephemeralOwner, ...parseCandidateData(node.data, c.name), tampered }, czxid: node.stat.czxid });
  }
  const first = candidates[0]?.status.tampered ? undefined : candidates[0];
  return { election: `${namespace}/${name}`, leader: first?.status ?? null, epoch: first?.czxid ?? null, candidates: candidates.map((c) => c.status) };
}

/**
 * Every election under `root` (or the one named), sorted by namespace and name. Namespaces
 * this session may not read (tenants of other credentials) go to `denied`. Children whose
 * names start with "_" (configuration, locks) are not elections.
 */
export async function readElections(session: ZooKeeperSession, root: string, only?: { namespace: string; name: string }, denied: string[] = []): Promise<ElectionStatus[]> {
  if (only) return [await readElection(session, root, only.namespace, only.name)];
  const result: ElectionStatus[] = [];
  for (const namespace of (await childrenOrEmpty(session, root)).sort()) {
    let names: string[];
    try {
      names = await childrenOrEmpty(session, `${root}/${namespace}`);
    } catch (err) {
      if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH)) throw err;
      denied.push(namespace);
      continue;
    }
    for (const name of names.filter((n) => !n.startsWith('_')).sort()) {
      result.push(await readElection(session, root, namespace, name));
    }
  }
  return result;
}

/** A member as the table lists it: `pod@cluster` when it has a cluster. */
function memberCell(c: CandidateStatus): string {
  const name = c.cluster ? `${c.pod}@${c.cluster}` : c.pod;
  return c.tampered ? `${name}(tampered)` : name;
}

/**
 * A kubectl-like table. The CLUSTER column (the leader's cluster) appears only when some
 * member has a cluster: the table of single-cluster elections stays as it was.
 */
export function formatElectionTable(elections: readonly ElectionStatus[]): string {
  const clusters = elections.some((e) => e.candidates.some((c) => c.cluster !== ''));
  const rows = [
    ['ELECTION', 'LEADER', ...(clusters ? ['CLUSTER'] : []), 'EPOCH', 'CANDIDATES', 'MEMBERS (ELECTION ORDER)'],
    ...elections.map((e) => [
      e.election,
      e.leader?.pod ?? '<none>',
      ...(clusters ? [e.leader ? e.leader.cluster || '<none>' : '<none>'] : []),
      e.epoch ?? '<none>',
      String(e.candidates.length),
      e.candidates.map(memberCell).join(',') || '<none>',
    ]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return `${rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3))).join('')).join('\n')}\n`;
}
