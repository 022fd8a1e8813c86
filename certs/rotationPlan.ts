import type { CertificateInfo } from './certificateInfo.js';
import { isIssuedBy } from './certificateInfo.js';

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
}

export interface RotationPolicy {
  readonly now: Date;
  /** The SANs the serving certificate must carry. */
  readonly dnsNames: readonly string[];
  /** How long a CA that no longer signs the served certificate stays trusted (webhook pods reload the new files). */
  readonly graceMs: number;
}

/** What to do to the Secret; the caller issues certificates, builds the bundle and writes. */
export interface RotationPlan {
  readonly issueCa: boolean;
  readonly issueServing: boolean;
  /** CAs of the current bundle other than the signing CA that must stay trusted, in bundle order. */
  readonly keptCas: readonly CertificateInfo[];
  readonly caRotatedAt: Date | undefined;
  /** Why certificates are issued or CAs dropped; empty when the Secret stays as it is. */
  readonly reasons: readonly string[];
}

/** Less than a third of the certificate's life is left (or none). */
export function isDueForRotation(cert: CertificateInfo, now: Date): boolean {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return cert.notAfter.getTime() - now.getTime() < life / 3;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const left = [...new Set(a)].sort();
  const right = [...new Set(b)].sort();
  return left.length === right.length && left.every((name, i) => name === right[i]);
}

function servingProblems(stored: StoredCertificates, policy: RotationPolicy): string[] {
  const { serving, signingCa } = stored;
  const problems: string[] = [];
  if (!isIssuedBy(serving, signingCa)) problems.push('the serving certificate was not issued by the signing CA');
  if (!sameNames(serving.dnsNames, policy.dnsNames)) {
    problems.push(`the serving certificate names ${serving.dnsNames.join(',')}, expected ${policy.dnsNames.join(',')}`);
  }
  if (isDueForRotation(serving, policy.now)) {
    problems.push(`the serving certificate expires ${serving.notAfter.toISOString()}, less than a third of its life away`);
  }
  return problems;
}

/**
 * Decides, from the Secret's certificates and the clock alone, whether to issue a new
 * CA and serving certificate, and which old CAs stay in the trust bundle.
 *
 * A rotation never breaks admission: a new CA is added to the bundle next to the old
 * one, and the old one stays until `graceMs` after the serving certificate stopped
 * using it (the caller patches the webhook configuration before it writes the Secret).
 */
export function planRotation(stored: StoredCertificates | undefined, policy: RotationPolicy, missingReason = 'no certificates stored'): RotationPlan {
  if (stored === undefined) {
    return { issueCa: true, issueServing: true, keptCas: [], caRotatedAt: undefined, reasons: [missingReason] };
  }
  const { now } = policy;
  const reasons: string[] = [];
  const issueCa = isDueForRotation(stored.signingCa, now);
  if (issueCa) reasons.push(`the CA expires ${stored.signingCa.notAfter.toISOString()}, less than a third of its life away`);
  const problems = servingProblems(stored, policy);
  reasons.push(...problems);
  const issueServing = issueCa || problems.length > 0;

  // The CA that issued the certificate the webhook serves now must stay trusted until it reloads.
  const previousIssuer = stored.trustedCas.find((ca) => isIssuedBy(stored.serving, ca));
  const issuerChanges = issueServing && previousIssuer !== undefined && (issueCa || previousIssuer.fingerprint !== stored.signingCa.fingerprint);
  const caRotatedAt = issuerChanges ? now : stored.caRotatedAt;
  const inGrace = caRotatedAt !== undefined && now.getTime() < caRotatedAt.getTime() + policy.graceMs;

  const candidates = issueCa ? stored.trustedCas : stored.trustedCas.filter((ca) => ca.fingerprint !== stored.signingCa.fingerprint);
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
