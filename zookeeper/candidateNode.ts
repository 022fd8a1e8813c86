/** A child of the election node: `<uuid>-n_<10-digit sequence>`. */
export interface CandidateNode {
  readonly name: string;
  readonly uuid: string;
  readonly sequence: number;
}

const candidatePattern = /^(.+)-n_(\d{10})$/;

/** The name prefix a candidate creates; ZooKeeper appends the sequence. */
export function candidatePrefix(uuid: string): string {
  return `${uuid}-n_`;
}

/** Parses one child name; null for nodes that are not candidates. */
export function parseCandidateNode(name: string): CandidateNode | null {
  const m = candidatePattern.exec(name);
  if (!m?.[1] || !m[2]) return null;
  return { name, uuid: m[1], sequence: Number(m[2]) };
}

/** The candidates among the children, in election order (lowest sequence first). */
export function electionOrder(children: readonly string[]): CandidateNode[] {
  return children
    .map(parseCandidateNode)
    .filter((c): c is CandidateNode => c !== null)
    .sort((a, b) => a.sequence - b.sequence || a.name.localeCompare(b.name));
}
