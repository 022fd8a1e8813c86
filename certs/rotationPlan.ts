import type { CertificateInfo } from './certificateInfo.js';
import { canonicalIp, isIssuedBy } from './certificateInfo.js';

/** The certificates of the webhook's Secret, parsed and checked for consistency. */
export interface StoredCertificates {
  /** The CA that signs serving certificates (its key is in the Secret). */
  readonly signingCa: CertificateInfo;
  readonly caKeyPem: string;
  readonly serving: CertificateInfo;
  readonly servingKeyPem: string;
  /** The trust bundle (ca.crt = the caBundle of the webhook configuration), signing CA included. */
  readonly trustedCas: readonly CertificateInfo[];
  /** When the serving certificate last moved to another CA; old CAs stay trusted for a grace period after it. */
  readonly caRotatedAt: Date | undefined;
  /** The zkleader.io/ca-rotated-at annotation as found when it is not a readable time (caRotatedAt is then undefined). */
  readonly unreadableCaRotatedAt?: string | undefined;
}

export interface RotationPolicy {
  readonly now: Date;
  /** The DNS SANs the serving certificate must carry. */
  readonly dnsNames: readonly string[];
  /** The IP address SANs the serving certificate must carry. */
  readonly ipAddresses: readonly string[];
  /** How long a CA that no longer signs the served certificate stays trusted (webhook pods reload the new files). */
  readonly graceMs: number;
}

/** What to do to the Secret; the caller issues certificates, builds the bundle and writes. */
export interface RotationPlan {
  readonly issueCa: boolean;
  readonly issueServing: boolean;
  /** CAs other than the signing CA that must stay trusted, in bundle order. */
  readonly keptCas: readonly CertificateInfo[];
  readonly caRotatedAt: Date | undefined;
  /** Why certificates are issued, CAs kept or dropped; empty when the Secret stays as it is. */
  readonly reasons: readonly string[];
}

/** Less than a third of the certificate's life is left (or none). */
export function isDueForRotation(cert: CertificateInfo, now: Date): boolean {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return cert.notAfter.getTime() - now.getTime() < life / 3;
}

/** The certificate's notBefore is still ahead: no TLS client accepts it yet. */
function isNotYetValid(cert: CertificateInfo, now: Date): boolean {
  return cert.notBefore.getTime() > now.getTime();
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const left = [...new Set(a)].sort();
  const right = [...new Set(b)].sort();
  return left.length === right.length && left.every((name, i) => name === right[i]);
}

const listed = (names: readonly string[]) => (names.length === 0 ? 'none' : names.join(','));

function servingProblems(stored: StoredCertificates, policy: RotationPolicy): string[] {
  const { serving, signingCa } = stored;
  const problems: string[] = [];
  if (!isIssuedBy(serving, signingCa)) problems.push('the serving certificate was not issued by the signing CA');
  if (!sameNames(serving.dnsNames, policy.dnsNames)) {
    problems.push(`the serving certificate names ${listed(serving.dnsNames)}, expected ${listed(policy.dnsNames)}`);
  }
  const wantedIps = policy.ipAddresses.map(canonicalIp);
  if (!sameNames(serving.ipAddresses, wantedIps)) {
    problems.push(`the serving certificate has the IP addresses ${listed(serving.ipAddresses)}, expected ${listed(wantedIps)}`);
  }
  if (isNotYetValid(serving, policy.now)) {
    problems.push(`the serving certificate is not valid before ${serving.notBefore.toISOString()}, which is in the future, so it cannot be served`);
  } else if (isDueForRotation(serving, policy.now)) {
    problems.push(`the serving certificate expires ${serving.notAfter.toISOString()}, less than a third of its life away`);
  }
  return problems;
}

/**
 * The time the grace period of the old CAs counts from. An annotation that is not a
 * time, or a time in the future (a hand edit, or a clock that was far ahead), cannot
 * be trusted: taken as it is, a future time would keep old CAs trusted for ever. Both
 * are treated alike:
 *  - with old CAs in the bundle (a rotation may be in progress, the webhook pods may
 *    still serve a certificate an old CA signed), as now: the old CAs stay one full
 *    grace period from this run, then are dropped;
 *  - with no old CA in the bundle (no rotation in progress), as absent: the annotation
 *    is dropped from the Secret.
 */
function graceStart(stored: StoredCertificates, now: Date, rotationInProgress: boolean, reasons: string[]): Date | undefined {
  const found =
    stored.unreadableCaRotatedAt !== undefined
      ? `the CA rotation time ${JSON.stringify(stored.unreadableCaRotatedAt)} is not an ISO 8601 time`
      : stored.caRotatedAt !== undefined && stored.caRotatedAt.getTime() > now.getTime()
        ? `the CA rotation time ${stored.caRotatedAt.toISOString()} is in the future`
        : undefined;
  if (found === undefined) return stored.caRotatedAt;
  if (rotationInProgress) {
    reasons.push(`${found}; the old CAs stay trusted for the grace period from now (${now.toISOString()})`);
    return now;
  }
  reasons.push(`${found}; dropping it, no CA rotation is in progress`);
  return undefined;
}

function uniqueByFingerprint(cas: readonly CertificateInfo[]): CertificateInfo[] {
  const seen = new Set<string>();
  return cas.filter((ca) => !seen.has(ca.fingerprint) && seen.add(ca.fingerprint));
}

/**
 * Decides, from the Secret's certificates and the clock alone, whether to issue a new
 * CA and serving certificate, and which old CAs stay in the trust bundle.
 *
 * A rotation never breaks admission: a new CA is added to the bundle next to the old
 * one, and the old one stays until `graceMs` after the serving certificate stopped
 * using it (the caller patches the webhook configuration before it writes the Secret).
 *
 * When the Secret is missing or unusable (`stored` undefined), everything is issued
 * anew, and `previousCas`, the certificates still trusted for the webhook (the
 * Secret's ca.crt, the webhook configuration's caBundle), stay trusted for the grace
 * period too: the webhook pods serve a certificate one of them signed until they reload.
 */
export function planRotation(
  stored: StoredCertificates | undefined,
  policy: RotationPolicy,
  missingReason = 'no certificates stored',
  previousCas: readonly CertificateInfo[] = [],
): RotationPlan {
  const { now } = policy;
  if (stored === undefined) {
    const reasons = [missingReason];
    const keptCas: CertificateInfo[] = [];
    for (const ca of uniqueByFingerprint(previousCas)) {
      if (ca.notAfter.getTime() <= now.getTime()) reasons.push(`dropping the expired CA ${ca.fingerprint} from the bundle`);
      else keptCas.push(ca);
    }
    if (keptCas.length > 0) {
      reasons.push(
        `keeping the ${keptCas.length} CA(s) trusted so far in the bundle next to the new CA until ${new Date(now.getTime() + policy.graceMs).toISOString()}, so the certificate the webhook pods serve now still verifies`,
      );
    }
    return { issueCa: true, issueServing: true, keptCas, caRotatedAt: keptCas.length > 0 ? now : undefined, reasons };
  }
  const reasons: string[] = [];
  const caNotYetValid = isNotYetValid(stored.signingCa, now);
  const issueCa = caNotYetValid || isDueForRotation(stored.signingCa, now);
  if (caNotYetValid) {
    reasons.push(`the CA is not valid before ${stored.signingCa.notBefore.toISOString()}, which is in the future, so no certificate it signs verifies yet`);
  } else if (issueCa) {
    reasons.push(`the CA expires ${stored.signingCa.notAfter.toISOString()}, less than a third of its life away`);
  }
  const problems = servingProblems(stored, policy);
  reasons.push(...problems);
  const issueServing = issueCa || problems.length > 0;

  const oldCas = stored.trustedCas.filter((ca) => ca.fingerprint !== stored.signingCa.fingerprint);
  const storedGraceStart = graceStart(stored, now, oldCas.some((ca) => ca.notAfter.getTime() > now.getTime()), reasons);
  // The CA that issued the certificate the webhook serves now must stay trusted until it reloads.
  const previousIssuer = stored.trustedCas.find((ca) => isIssuedBy(stored.serving, ca));
  const issuerChanges = issueServing && previousIssuer !== undefined && (issueCa || previousIssuer.fingerprint !== stored.signingCa.fingerprint);
  const caRotatedAt = issuerChanges ? now : storedGraceStart;
  const inGrace = caRotatedAt !== undefined && now.getTime() < caRotatedAt.getTime() + policy.graceMs;

  const candidates = issueCa ? stored.trustedCas : oldCas;
  const keptCas: CertificateInfo[] = [];
  for (const ca of candidates) {
    if (ca.notAfter.getTime() <= now.getTime()) {
      reasons.push(`dropping the expired CA ${ca.fingerprint} from the bundle`);
    } else if (inGrace) {
      keptCas.push(ca);
    } else {
      reasons.push(`dropping the old CA ${ca.fingerprint} from the bundle: no served certificate uses it since ${caRotatedAt?.toISOString() ?? 'before'}`);
    }
  }
  return { issueCa, issueServing, keptCas, caRotatedAt, reasons };
}
