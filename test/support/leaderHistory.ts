import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { LeaderDocument } from '../../sidecar/leaderFile.js';
import type { ApiEmulator } from './apiEmulator/index.js';

/*
 * Safety as a property of a recorded history (STYLE.md, jepsen-io/jepsen): a recorder
 * writes down what every member published — its leader.json, and its pod's labels as the
 * API shows them — and pure checkers decide each safety claim of DESIGN.md over the whole
 * history. A failure names the property and prints the smallest window of history that
 * breaks it.
 *
 * The names below are spelled out rather than imported from sidecar/: they are the public
 * contract (DESIGN.md), and a renamed constant in the product must fail these checks.
 */
const roleLabel = 'zkleader.io/role';
const electionLabel = 'zkleader.io/election';
const epochAnnotation = 'zkleader.io/leader-epoch';

/** What one member's leader.json said when it was sampled (recorded only when it changed). */
export interface FileObservation {
  readonly kind: 'file';
  /** ms since the epoch, on the same clock the sidecars use for `since` and `validUntil`. */
  readonly at: number;
  /** The member (pod) name. */
  readonly member: string;
  /** null: no document — before the member's first write, when unreadable (see `error`), or with the volume gone. */
  readonly doc: LeaderDocument | null;
  /** Why the file could not be read or parsed: a failure, never "not leader". */
  readonly error?: string;
  /**
   * The member's volume directory is gone (the pod was deleted or crashed with its node):
   * no new information — what its last document said still stands until its validUntil.
   */
  readonly gone?: true;
}

/** One pod's role label and epoch annotation as a list of the election's pods showed them (recorded on change). */
export interface LabelObservation {
  readonly kind: 'label';
  /** Each distinct `at` is one list of the pods (one consistent sample of all their labels). */
  readonly at: number;
  readonly pod: string;
  /** The `zkleader.io/role` label; null when the pod has none or is no longer listed. */
  readonly role: string | null;
  /** The `zkleader.io/leader-epoch` annotation, null when absent. */
  readonly epoch: string | null;
}

export type Observation = FileObservation | LabelObservation;

export interface LeaderHistory {
  /** In time order. */
  readonly files: readonly FileObservation[];
  /** In time order. */
  readonly labels: readonly LabelObservation[];
}

export type PropertyName =
  | 'filesReadable'
  | 'noTwoValidLeaders'
  | 'leaseBeforeSuccessor'
  | 'epochsGrow'
  | 'noTwoLeaderLabels'
  | 'leaderLabelEpochsGrow'
  | 'epochIsCzxid';

export interface Violation {
  readonly property: PropertyName;
  readonly message: string;
  /** The observations that show it, in time order. */
  readonly window: readonly Observation[];
}

// --- reading leader.json ----------------------------------------------------------------------

/**
 * Parses a leader.json text and checks the shape DESIGN.md promises; throws an Error naming
 * the first field that is wrong. A torn (half-written) file fails JSON.parse here, and a
 * leader document without an epoch or a lease is no leadership an app could honour.
 */
export function parseLeaderDocument(text: string): LeaderDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 120))}`, { cause: err });
  }
  if (!isRecord(value)) throw new Error(`expected a JSON object, got ${JSON.stringify(value)}`);
  const doc = value as Record<string, unknown>;
  const problem = documentProblem(doc);
  if (problem) throw new Error(`${problem}: ${JSON.stringify(value).slice(0, 300)}`);
  return value as unknown as LeaderDocument;
}

function documentProblem(doc: Record<string, unknown>): string | null {
  if (typeof doc.election !== 'string') return 'election is not a string';
  if (doc.state !== 'leader' && doc.state !== 'follower' && doc.state !== 'unknown') return `state ${JSON.stringify(doc.state)} is not leader|follower|unknown`;
  if (typeof doc.isLeader !== 'boolean') return 'isLeader is not a boolean';
  if (doc.isLeader !== (doc.state === 'leader')) return `isLeader ${String(doc.isLeader)} contradicts state ${doc.state}`;
  if (!isMember(doc.self)) return 'self is not a member identity';
  if (doc.leader !== null && !isMember(doc.leader)) return 'leader is neither null nor a member identity';
  if (doc.epoch !== null && !(typeof doc.epoch === 'string' && /^\d+$/.test(doc.epoch))) return 'epoch is neither null nor a decimal string';
  if (!Array.isArray(doc.members) || !doc.members.every(isMember)) return 'members is not a list of member identities';
  if (!isTime(doc.since)) return 'since is not an ISO time';
  if (doc.renewedAt !== null && !isTime(doc.renewedAt)) return 'renewedAt is neither null nor an ISO time';
  if (doc.validUntil !== null && !isTime(doc.validUntil)) return 'validUntil is neither null nor an ISO time';
  if (doc.isLeader) {
    if (doc.epoch === null) return 'a leader document without an epoch';
    if (doc.validUntil === null) return 'a leader document without validUntil';
    if (!isMember(doc.leader) || doc.leader.pod !== (doc.self as { pod: string }).pod) return 'a leader document that does not name itself as leader';
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A member identity: a pod name, and its cluster as a string ("" for none; DESIGN.md "One election across clusters"). */
function isMember(value: unknown): value is { pod: string } {
  return isRecord(value) && typeof value.pod === 'string' && value.pod !== '' && typeof value.cluster === 'string';
}

function isTime(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

// --- the checkers -----------------------------------------------------------------------------

/** Every file that could not be read or parsed, or vanished after it existed, is a failure. */
export function filesReadable(history: LeaderHistory): Violation[] {
  const violations: Violation[] = [];
  const previous = new Map<string, FileObservation>();
  for (const o of history.files) {
    if (o.error !== undefined) {
      const before = previous.get(o.member);
      violations.push({
        property: 'filesReadable',
        message: `${o.member}'s leader.json could not be read as a leader document: ${o.error}`,
        window: before ? [before, o] : [o],
      });
    }
    previous.set(o.member, o);
  }
  return violations;
}

/**
 * A leader claim: from the moment a leader document was observed until the member's next
 * document was observed or its validUntil passed, whichever comes first. Sampling bounds
 * what we know: the document was on disk at `start`, and nothing says it stopped counting
 * before `end`.
 */
interface Claim {
  readonly obs: FileObservation & { readonly doc: LeaderDocument };
  readonly start: number;
  readonly end: number;
  /** The observation that ended the claim before its validUntil, if any. */
  readonly next: FileObservation | undefined;
}

function byMember(history: LeaderHistory): Map<string, FileObservation[]> {
  const members = new Map<string, FileObservation[]>();
  for (const o of history.files) {
    const list = members.get(o.member) ?? [];
    list.push(o);
    members.set(o.member, list);
  }
  return members;
}

function isLeaderObservation(o: FileObservation): o is FileObservation & { readonly doc: LeaderDocument } {
  return o.doc !== null && o.doc.isLeader;
}

function validUntilMs(doc: LeaderDocument): number {
  const t = doc.validUntil === null ? Number.NaN : Date.parse(doc.validUntil);
  // A leader document without a lease is refused by the parser; a hand-made one counts as unbounded.
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

function leaderClaims(history: LeaderHistory): Claim[] {
  const claims: Claim[] = [];
  for (const observations of byMember(history).values()) {
    observations.forEach((o, i) => {
      if (!isLeaderObservation(o)) return;
      // Errors and a removed volume tell nothing new: only the member's next document ends the claim.
      const next = observations.slice(i + 1).find((later) => later.doc !== null);
      const validUntil = validUntilMs(o.doc);
      const end = Math.min(next?.at ?? Number.POSITIVE_INFINITY, validUntil);
      if (end > o.at) claims.push({ obs: o, start: o.at, end, next: next && next.at < validUntil ? next : undefined });
    });
  }
  return claims.sort((a, b) => a.start - b.start);
}

/**
 * Never two valid leaders at once: no instant at which two members' files both say
 * `isLeader: true` with a validUntil still ahead (each claim as in `Claim`). One violation
 * per pair of members, showing the first overlap.
 */
export function noTwoValidLeaders(history: LeaderHistory): Violation[] {
  const claims = leaderClaims(history);
  const found = new Map<string, { first: Claim[]; overlaps: number; totalMs: number }>();
  for (let i = 0; i < claims.length; i++) {
    const a = claims[i] as Claim;
    for (let j = i + 1; j < claims.length; j++) {
      const b = claims[j] as Claim;
      if (b.start >= a.end) break;
      if (b.obs.member === a.obs.member) continue;
      const key = [a.obs.member, b.obs.member].sort().join('|');
      const entry = found.get(key) ?? { first: [a, b], overlaps: 0, totalMs: 0 };
      entry.overlaps++;
      entry.totalMs += Math.min(a.end, b.end) - b.start;
      found.set(key, entry);
    }
  }
  return [...found.values()].map(({ first, overlaps, totalMs }): Violation => {
    const [a, b] = first as [Claim, Claim];
    const from = b.start;
    const to = Math.min(a.end, b.end);
    const more = overlaps > 1 ? `; ${overlaps - 1} more overlapping claim(s) of the same two members, ${totalMs} ms of overlap in all` : '';
    return {
      property: 'noTwoValidLeaders',
      message:
        `two valid leaders at once from ${clock(from)} to ${clock(to)} (${to - from} ms): ` +
        `${describeClaim(a)} and ${describeClaim(b)}${more}`,
      window: inTimeOrder([a.obs, a.next, b.obs, b.next]),
    };
  });
}

function describeClaim(c: Claim): string {
  return `${c.obs.member} (epoch ${c.obs.doc.epoch ?? 'null'}, valid until ${clock(validUntilMs(c.obs.doc))})`;
}

/**
 * One member's uninterrupted leadership with one epoch: consecutive leadership terms (leader
 * documents with one `since`) of the same member and epoch, in the order the terms began.
 */
interface Leadership {
  readonly pod: string;
  readonly epoch: string;
  /** The `since` of its first term. */
  readonly start: number;
  /** When its lease ended at the latest: its last validUntil, or earlier when it published that it let go. */
  readonly end: number;
  /** The leader document with the latest validUntil. */
  readonly latest: FileObservation & { readonly doc: LeaderDocument };
  readonly first: FileObservation;
  /** The member's document that let go of this leadership (its `since` is when), if observed. */
  readonly ending: FileObservation | undefined;
}

function leaderships(history: LeaderHistory): Leadership[] {
  const members = byMember(history);
  interface Term {
    readonly pod: string;
    readonly epoch: string;
    readonly since: number;
    readonly docs: (FileObservation & { readonly doc: LeaderDocument })[];
  }
  const terms = new Map<string, Term>();
  for (const o of history.files) {
    if (!isLeaderObservation(o) || o.doc.epoch === null) continue;
    const since = Date.parse(o.doc.since);
    const key = `${o.member}|${o.doc.epoch}|${since}`;
    const term = terms.get(key) ?? { pod: o.member, epoch: o.doc.epoch, since, docs: [] };
    term.docs.push(o);
    terms.set(key, term);
  }
  // Ordered by when each leadership began by its member's own account, not by when sampling
  // saw it: a crashed leader's file, recorded once, must not sort after its successor.
  const ordered = [...terms.values()].sort((a, b) => a.since - b.since || (a.docs[0]?.at ?? 0) - (b.docs[0]?.at ?? 0));
  const runs: Term[][] = [];
  for (const term of ordered) {
    const run = runs.at(-1);
    const last = run?.at(-1);
    if (run && last && last.pod === term.pod && last.epoch === term.epoch) run.push(term);
    else runs.push([term]);
  }
  return runs.map((run) => {
    const docs = run.flatMap((t) => t.docs);
    const latest = docs.reduce((a, b) => (validUntilMs(b.doc) > validUntilMs(a.doc) ? b : a));
    const lastTerm = run.at(-1) as Term;
    const lastSeen = lastTerm.docs.at(-1) as FileObservation;
    // The member's next document after the run's last term, if it is not the same leadership again.
    const after = (members.get(lastTerm.pod) ?? []).find((o) => o.at > lastSeen.at && o.doc !== null);
    const ending = after?.doc && !(after.doc.isLeader && after.doc.epoch === lastTerm.epoch) ? after : undefined;
    const relinquished = ending?.doc ? Date.parse(ending.doc.since) : Number.POSITIVE_INFINITY;
    return {
      pod: lastTerm.pod,
      epoch: lastTerm.epoch,
      start: (run[0] as Term).since,
      end: Math.min(validUntilMs(latest.doc), relinquished),
      latest,
      first: (run[0] as Term).docs[0] as FileObservation,
      ending,
    };
  });
}

/**
 * Every lease ends before the next leadership starts: for consecutive leaderships of
 * different members with different epochs, the earlier one's last published validUntil (over
 * all its leader documents with that epoch) is before the successor's `since` — unless it
 * published first that it let go (a `follower` or `unknown` document), whose `since` then ends
 * the lease: a graceful handover need not wait out the lease.
 */
export function leaseBeforeSuccessor(history: LeaderHistory): Violation[] {
  const all = leaderships(history);
  const violations = new Map<string, Violation>();
  for (let i = 1; i < all.length; i++) {
    const prev = all[i - 1] as Leadership;
    const next = all[i] as Leadership;
    if (prev.pod === next.pod || prev.epoch === next.epoch || prev.end < next.start) continue;
    const key = `${prev.pod}@${prev.epoch}>${next.pod}@${next.epoch}`;
    if (violations.has(key)) continue;
    const how = prev.ending && prev.end < validUntilMs(prev.latest.doc) ? `let go only at ${clock(prev.end)}` : `was valid until ${clock(prev.end)}`;
    violations.set(key, {
      property: 'leaseBeforeSuccessor',
      message:
        `the lease of ${prev.pod} (epoch ${prev.epoch}) ${how}, ${prev.end - next.start} ms into ` +
        `the leadership of ${next.pod} (epoch ${next.epoch}) since ${clock(next.start)}`,
      window: inTimeOrder([prev.latest, prev.ending, next.first]),
    });
  }
  return [...violations.values()];
}

/**
 * The epochs of successive leaderships strictly increase (compared as integers: they are
 * zxids and may exceed 2^53), and one epoch never belongs to two members.
 */
export function epochsGrow(history: LeaderHistory): Violation[] {
  const all = leaderships(history);
  const violations = new Map<string, Violation>();
  const owner = new Map<string, Leadership>();
  for (let i = 0; i < all.length; i++) {
    const l = all[i] as Leadership;
    const other = owner.get(l.epoch);
    if (other && other.pod !== l.pod && !violations.has(`owner:${l.epoch}`)) {
      violations.set(`owner:${l.epoch}`, {
        property: 'epochsGrow',
        message: `epoch ${l.epoch} belongs to two members: ${other.pod} and ${l.pod}`,
        window: inTimeOrder([other.first, l.first]),
      });
    }
    if (!other) owner.set(l.epoch, l);
    const prev = all[i - 1];
    if (prev && prev.epoch !== l.epoch && BigInt(l.epoch) < BigInt(prev.epoch)) {
      const key = `down:${prev.epoch}>${l.epoch}`;
      if (!violations.has(key)) {
        violations.set(key, {
          property: 'epochsGrow',
          message: `the epoch went down: ${prev.pod} led with ${prev.epoch}, then ${l.pod} with ${l.epoch} (since ${clock(l.start)})`,
          window: inTimeOrder([prev.latest, l.first]),
        });
      }
    }
  }
  return [...violations.values()];
}

/** The epochs of successive leaderships, in order (for assertions such as "leadership never changed"). */
export function leaderEpochs(history: LeaderHistory): string[] {
  return leaderships(history).map((l) => l.epoch);
}

/** Replays the label observations one list at a time: the roles of all pods after each sample. */
function labelSamples(history: LeaderHistory): { at: number; state: Map<string, LabelObservation> }[] {
  const state = new Map<string, LabelObservation>();
  const samples: { at: number; state: Map<string, LabelObservation> }[] = [];
  const labels = history.labels;
  for (let i = 0; i < labels.length; i++) {
    const o = labels[i] as LabelObservation;
    state.set(o.pod, o);
    if (labels[i + 1]?.at !== o.at) samples.push({ at: o.at, state: new Map(state) });
  }
  return samples;
}

/** Never two pods labelled `zkleader.io/role=leader` in the same list of the election's pods. */
export function noTwoLeaderLabels(history: LeaderHistory): Violation[] {
  const violations = new Map<string, Violation>();
  for (const { at, state } of labelSamples(history)) {
    const leaders = [...state.values()].filter((o) => o.role === 'leader');
    if (leaders.length < 2) continue;
    const key = leaders.map((o) => `${o.pod}@${o.epoch ?? ''}`).sort().join(',');
    if (violations.has(key)) continue;
    violations.set(key, {
      property: 'noTwoLeaderLabels',
      message: `${leaders.length} pods labelled ${roleLabel}=leader at ${clock(at)}: ${leaders.map((o) => `${o.pod} (epoch ${o.epoch ?? 'none'})`).join(', ')}`,
      window: inTimeOrder([...leaders, ...history.labels.filter((o) => o.at === at && o.role !== 'leader')]),
    });
  }
  return [...violations.values()];
}

/**
 * Each pod newly labelled leader carries an epoch annotation not below any earlier leader
 * label's, and one epoch is never labelled on two pods: a stale label of a former leader
 * coming back would route the Service to it.
 */
export function leaderLabelEpochsGrow(history: LeaderHistory): Violation[] {
  const violations: Violation[] = [];
  let highest: LabelObservation | undefined;
  for (const o of history.labels) {
    if (o.role !== 'leader') continue;
    if (o.epoch === null || !/^\d+$/.test(o.epoch)) {
      violations.push({ property: 'leaderLabelEpochsGrow', message: `${o.pod} is labelled leader without a decimal ${epochAnnotation} (${JSON.stringify(o.epoch)})`, window: [o] });
      continue;
    }
    if (highest) {
      const down = BigInt(o.epoch) < BigInt(highest.epoch as string);
      const shared = o.epoch === highest.epoch && o.pod !== highest.pod;
      if (down || shared) {
        violations.push({
          property: 'leaderLabelEpochsGrow',
          message: down
            ? `${o.pod} was labelled leader with epoch ${o.epoch} after ${highest.pod} had been with ${highest.epoch}`
            : `epoch ${o.epoch} labelled on two pods: ${highest.pod} and ${o.pod}`,
          window: [highest, o],
        });
        continue;
      }
    }
    if (!highest || BigInt(o.epoch) >= BigInt(highest.epoch as string)) highest = o;
  }
  return violations;
}

/**
 * The epoch is the leader node's czxid: every epoch a leader published is the czxid of one
 * of its own candidate nodes, and every epoch a follower published is that of a node of the
 * leader it names. `czxidsByPod` comes from an observer client (test/support/electionObserver.ts).
 */
export function epochIsCzxid(history: LeaderHistory, czxidsByPod: ReadonlyMap<string, readonly string[]>): Violation[] {
  const violations = new Map<string, Violation>();
  for (const o of history.files) {
    const doc = o.doc;
    if (!doc || doc.epoch === null) continue;
    const owner = doc.isLeader ? o.member : doc.leader?.pod;
    if (owner === undefined) continue;
    const czxids = czxidsByPod.get(owner) ?? [];
    const key = `${o.member}|${owner}|${doc.epoch}`;
    if (czxids.includes(doc.epoch) || violations.has(key)) continue;
    const who = doc.isLeader ? `leader ${o.member}` : `${o.member}, a follower of ${owner},`;
    violations.set(key, {
      property: 'epochIsCzxid',
      message: `${who} published epoch ${doc.epoch}, which is no czxid of ${owner}'s candidate nodes (${czxids.length ? czxids.join(', ') : 'none observed'})`,
      window: [o],
    });
  }
  return [...violations.values()];
}

export interface HistoryCheckOptions {
  /** pod → czxids of its candidate nodes; without it epochIsCzxid is not checked. */
  readonly czxidsByPod?: ReadonlyMap<string, readonly string[]>;
}

/** Every checker over the whole history. */
export function checkHistory(history: LeaderHistory, options: HistoryCheckOptions = {}): Violation[] {
  return [
    ...filesReadable(history),
    ...noTwoValidLeaders(history),
    ...leaseBeforeSuccessor(history),
    ...epochsGrow(history),
    ...noTwoLeaderLabels(history),
    ...leaderLabelEpochsGrow(history),
    ...(options.czxidsByPod ? epochIsCzxid(history, options.czxidsByPod) : []),
  ];
}

/** Throws an Error listing every violated property with its window; returns when the history is safe. */
export function expectSafeHistory(history: LeaderHistory, options: HistoryCheckOptions = {}): void {
  const violations = checkHistory(history, options);
  if (violations.length > 0) throw new Error(formatViolations(violations));
}

// --- printing ---------------------------------------------------------------------------------

/** Time of day with milliseconds (UTC): the windows span seconds, never days. */
function clock(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString().slice(11, 23) : 'forever';
}

function clockOf(iso: string | null): string {
  return iso === null ? 'null' : clock(Date.parse(iso));
}

function inTimeOrder(observations: readonly (Observation | undefined)[]): Observation[] {
  const unique = [...new Set(observations.filter((o): o is Observation => o !== undefined))];
  return unique.sort((a, b) => a.at - b.at);
}

/** One line for one observation. */
export function describeObservation(o: Observation): string {
  if (o.kind === 'label') {
    return `${clock(o.at)}  ${o.pod}  label ${roleLabel}=${o.role ?? '(none)'} ${epochAnnotation}=${o.epoch ?? '(none)'}`;
  }
  const head = `${clock(o.at)}  ${o.member}  `;
  if (o.error !== undefined) return `${head}UNREADABLE: ${o.error}`;
  if (o.gone) return `${head}volume gone (its last document still stands until its validUntil)`;
  const d = o.doc;
  if (!d) return `${head}no leader.json yet`;
  const leader = d.isLeader ? '' : ` leader=${d.leader?.pod ?? 'null'}`;
  return `${head}${d.state}${leader} epoch=${d.epoch ?? 'null'} since=${clockOf(d.since)} renewedAt=${clockOf(d.renewedAt)} validUntil=${clockOf(d.validUntil)}`;
}

/** The violations as text for a test failure: property, what broke, and the window of history. */
export function formatViolations(violations: readonly Violation[]): string {
  return violations
    .map((v) => [`✗ ${v.property}: ${v.message}`, ...v.window.map((o) => `    ${describeObservation(o)}`)].join('\n'))
    .join('\n');
}

// --- the recorder -----------------------------------------------------------------------------

/** A member to sample: its pod name and its volume directory (where leader.json is). */
export interface RecordedMember {
  readonly member: string;
  readonly dir: string;
}

/** Where the recorder reads the role labels of the election's pods from. */
export interface PodLabelSource {
  /** The election's pods, as one consistent view (one list). */
  readonly list: () => readonly V1Pod[] | Promise<readonly V1Pod[]>;
  /** Sampling period of the labels (default: the recorder's). */
  readonly intervalMs?: number;
  /** A value that changes whenever the pods may have (e.g. a request count): unchanged, the sample is skipped. */
  readonly changeMark?: () => number;
}

/**
 * The labels as any client of the API sees them: a list through @kubernetes/client-node
 * with the selector `zkleader.io/election=<election>`.
 */
export function podsThroughApi(core: Pick<CoreV1Api, 'listNamespacedPod'>, namespace: string, election: string): PodLabelSource {
  return {
    list: async () => (await core.listNamespacedPod({ namespace, labelSelector: `${electionLabel}=${election}` })).items,
  };
}

/**
 * The labels straight from the API emulator's store, in process: cheap enough to read every
 * millisecond, and only after a request was served, so that a state lasting a single request
 * — a new leader's label set before the stale one is demoted — is still caught, where a list
 * over HTTP every few ms would miss it.
 */
export function podsInEmulator(emulator: Pick<ApiEmulator, 'listPods' | 'requests'>, namespace: string, election: string): PodLabelSource {
  return {
    list: () => emulator.listPods(namespace).filter((p) => p.metadata?.labels?.[electionLabel] === election),
    intervalMs: 1,
    changeMark: () => emulator.requests.length,
  };
}

export interface LeaderHistoryRecorderOptions {
  /**
   * The members to sample, asked every round. Return every member ever started, not only the
   * running ones: the files of exited, killed and paused members stay on disk and still count.
   */
  readonly members: () => readonly RecordedMember[];
  /** Also record the pods' role labels and epoch annotations through this API. */
  readonly labels?: PodLabelSource;
  /** Sampling period of the files and of the label lists (default 10 ms). */
  readonly intervalMs?: number;
}

/**
 * Samples every member's leader.json every `intervalMs`, and (optionally) the labels of the
 * election's pods, recording only changes. Checks the properties that can fail at an instant
 * (an unreadable file, two valid leaders, two leader labels) as it goes, so that a wait
 * wrapped in `guard` fails at once instead of timing out.
 */
export class LeaderHistoryRecorder {
  private readonly files: FileObservation[] = [];
  private readonly labels: LabelObservation[] = [];
  /** Per member, the text (or error) last recorded, to record only changes. */
  private readonly lastFile = new Map<string, string>();
  private readonly existed = new Set<string>();
  /** Members whose leader.json was missing at the last sample while their directory was there. */
  private readonly missing = new Set<string>();
  private readonly lastLabel = new Map<string, string>();
  private readonly guards = new Set<(err: Error) => void>();
  private readonly intervalMs: number;
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private labelLoop: Promise<void> | undefined;
  private stopped = false;
  private failure: Violation[] = [];
  private labelErrorText: string | null = null;
  private lastLabelMark: number | undefined;

  private constructor(private readonly options: LeaderHistoryRecorderOptions) {
    this.intervalMs = options.intervalMs ?? 10;
  }

  /** Starts recording; resolves after the first sample of the files (and of the labels). */
  static async start(options: LeaderHistoryRecorderOptions): Promise<LeaderHistoryRecorder> {
    const recorder = new LeaderHistoryRecorder(options);
    recorder.sample();
    recorder.timer = setInterval(() => recorder.sample(), recorder.intervalMs);
    const source = options.labels;
    if (source) {
      await recorder.sampleLabels(source);
      recorder.labelLoop = recorder.recordLabels(source);
    }
    return recorder;
  }

  /** The violations the online checks found so far (the first ones; the recorder keeps recording). */
  get violations(): readonly Violation[] {
    return this.failure;
  }

  /** The last error of listing the pods (the harness's read failed: not a property of the system). */
  get labelError(): string | null {
    return this.labelErrorText;
  }

  /** What was recorded so far. */
  history(): LeaderHistory {
    return { files: [...this.files], labels: [...this.labels] };
  }

  /**
   * Reads every member's leader.json once, synchronously: no write of the test process's own
   * can interleave, and all members are read at one `at`.
   */
  sample(): void {
    const at = this.tick();
    let changed = false;
    for (const { member, dir } of this.options.members()) {
      const o = this.readMember(member, dir, at);
      if (!o) continue;
      this.files.push(o);
      changed = true;
    }
    if (changed) this.checkOnline();
  }

  /**
   * Resolves or rejects as `promise` does — but rejects as soon as the online checks find a
   * violation, with the violation and its window as the message.
   */
  guard<T>(promise: Promise<T>): Promise<T> {
    if (this.failure.length > 0) {
      promise.catch(() => undefined);
      return Promise.reject(this.failureError());
    }
    return new Promise<T>((resolve, reject) => {
      const onViolation = (err: Error) => reject(err);
      this.guards.add(onViolation);
      promise.then(
        (value) => {
          this.guards.delete(onViolation);
          resolve(value);
        },
        (err: unknown) => {
          this.guards.delete(onViolation);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** Takes a last sample, stops, and returns the whole history. */
  async stop(): Promise<LeaderHistory> {
    if (!this.stopped) {
      this.sample();
      this.stopped = true;
      clearInterval(this.timer);
      // A list hung on a stopped API must not hold up the end of the test.
      await Promise.race([this.labelLoop, sleep(2000, undefined, { ref: false })]);
      if (this.options.labels) await Promise.race([this.sampleLabels(this.options.labels).catch(() => undefined), sleep(2000, undefined, { ref: false })]);
    }
    return this.history();
  }

  /** Strictly increasing times, so that each round (and each label list) has its own `at`. */
  private tick(): number {
    this.lastAt = Math.max(Date.now(), this.lastAt + 1);
    return this.lastAt;
  }

  private readMember(member: string, dir: string, at: number): FileObservation | null {
    let text: string | null = null;
    let error: string | undefined;
    let gone = false;
    try {
      text = readFileSync(join(dir, 'leader.json'), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') error = `cannot read leader.json: ${(err as Error).message}`;
      // The volume itself is gone with its pod; leader.json missing from a live volume it was written to is a failure.
      else if (!existsSync(dir)) gone = this.existed.has(member);
      else if (this.existed.has(member)) {
        // A volume being removed loses its files a moment before the directory itself: only a
        // file still missing at the next sample, its directory still there, is a lost file.
        if (!this.missing.has(member)) {
          this.missing.add(member);
          return null;
        }
        error = 'leader.json disappeared after it had been written (missing in two samples, its directory still there)';
      }
    }
    if (text !== null || gone) this.missing.delete(member);
    let doc: LeaderDocument | null = null;
    if (text !== null) {
      this.existed.add(member);
      try {
        doc = parseLeaderDocument(text);
      } catch (err) {
        error = (err as Error).message;
      }
    }
    const key = error !== undefined ? `error:${error}` : gone ? 'gone' : (text ?? 'absent');
    if (this.lastFile.get(member) === key) return null;
    this.lastFile.set(member, key);
    return {
      kind: 'file',
      at,
      member,
      doc: error === undefined ? doc : null,
      ...(error !== undefined && { error }),
      ...(gone && { gone: true as const }),
    };
  }

  private async recordLabels(source: PodLabelSource): Promise<void> {
    while (!this.stopped) {
      await sleep(source.intervalMs ?? this.intervalMs);
      if (this.stopped) return;
      try {
        await this.sampleLabels(source);
      } catch (err) {
        this.labelErrorText = (err as Error).message;
      }
    }
  }

  private async sampleLabels(source: PodLabelSource): Promise<void> {
    const mark = source.changeMark?.();
    if (mark !== undefined && mark === this.lastLabelMark) return;
    const pods = await source.list();
    this.lastLabelMark = mark;
    // The list is one consistent view of every pod's labels: all its changes share one `at`.
    const at = this.tick();
    const seen = new Set<string>();
    let changed = false;
    const record = (pod: string, role: string | null, epoch: string | null) => {
      const key = `${role}|${epoch}`;
      if (this.lastLabel.get(pod) === key) return;
      this.lastLabel.set(pod, key);
      this.labels.push({ kind: 'label', at, pod, role, epoch });
      changed = true;
    };
    for (const pod of pods) {
      const name = pod.metadata?.name;
      if (!name) continue;
      seen.add(name);
      record(name, pod.metadata?.labels?.[roleLabel] ?? null, pod.metadata?.annotations?.[epochAnnotation] ?? null);
    }
    for (const pod of this.lastLabel.keys()) if (!seen.has(pod)) record(pod, null, null);
    if (changed) this.checkOnline();
  }

  private checkOnline(): void {
    if (this.failure.length > 0) return;
    const history = this.history();
    const found = [...filesReadable(history), ...noTwoValidLeaders(history), ...noTwoLeaderLabels(history)];
    if (found.length === 0) return;
    this.failure = found;
    const err = this.failureError();
    for (const reject of this.guards) reject(err);
    this.guards.clear();
  }

  private failureError(): Error {
    return new Error(`safety violated while recording:\n${formatViolations(this.failure)}`);
  }
}
