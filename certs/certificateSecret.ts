import type { V1Secret } from '@kubernetes/client-node';
import type { CertificateInfo } from './certificateInfo.js';
import { matchesPrivateKey, readCertificate, readableCertificates, splitPemBundle } from './certificateInfo.js';
import type { StoredCertificates } from './rotationPlan.js';

/** Keys of the webhook's Secret: kubernetes.io/tls plus the trust bundle and the CA key. */
export const secretKeys = { cert: 'tls.crt', key: 'tls.key', caBundle: 'ca.crt', caKey: 'ca.key' } as const;
export const caRotatedAtAnnotation = 'zkleader.io/ca-rotated-at';

export type SecretReading = { kind: 'stored'; certificates: StoredCertificates } | { kind: 'unusable'; reason: string };

/**
 * A time as this tool writes it (toISOString) or a person would: ISO 8601 with a zone.
 * Date.parse alone is too lenient: it reads "1" as the year 2001, which would end a
 * grace period at once.
 */
const isoTimeWithZone = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

/** The annotation as a time; undefined when absent, 'unreadable' when it is not an ISO 8601 time with a zone. */
export function parseCaRotatedAt(value: string | undefined): Date | undefined | 'unreadable' {
  if (value === undefined) return undefined;
  const time = isoTimeWithZone.test(value.trim()) ? new Date(value.trim()) : undefined;
  return time === undefined || Number.isNaN(time.getTime()) ? 'unreadable' : time;
}

function decode(secret: V1Secret, key: string, where: string): string {
  const value = secret.data?.[key];
  if (value === undefined || value === '') throw new Error(`${where} has no ${key}`);
  return Buffer.from(value, 'base64').toString('utf8');
}

/**
 * Reads the certificates of the Secret; anything missing or inconsistent makes it
 * unusable (the caller then issues everything anew) with a reason naming the key.
 * An unreadable zkleader.io/ca-rotated-at annotation does not: it only records when
 * the grace period started, so it is passed on as unreadableCaRotatedAt for the
 * rotation plan to decide.
 */
export function readCertificateSecret(secret: V1Secret): SecretReading {
  const where = `Secret ${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
  try {
    const serving = readCertificate(decode(secret, secretKeys.cert, where), `${secretKeys.cert} of ${where}`);
    const servingKeyPem = decode(secret, secretKeys.key, where);
    if (!matchesPrivateKey(serving, servingKeyPem)) throw new Error(`${secretKeys.key} of ${where} is not the key of ${secretKeys.cert}`);
    const bundle = splitPemBundle(decode(secret, secretKeys.caBundle, where));
    if (bundle.length === 0) throw new Error(`${secretKeys.caBundle} of ${where} holds no PEM certificate`);
    const trustedCas = bundle.map((pem, i) => readCertificate(pem, `${secretKeys.caBundle} of ${where} (certificate ${i + 1})`));
    const caKeyPem = decode(secret, secretKeys.caKey, where);
    const signingCa = trustedCas.find((ca) => matchesPrivateKey(ca, caKeyPem));
    if (!signingCa) throw new Error(`${secretKeys.caKey} of ${where} belongs to no certificate of ${secretKeys.caBundle}`);
    const rotated = secret.metadata?.annotations?.[caRotatedAtAnnotation];
    const caRotatedAt = parseCaRotatedAt(rotated);
    return {
      kind: 'stored',
      certificates: {
        signingCa,
        caKeyPem,
        serving,
        servingKeyPem,
        trustedCas,
        caRotatedAt: caRotatedAt === 'unreadable' ? undefined : caRotatedAt,
        ...(caRotatedAt === 'unreadable' && { unreadableCaRotatedAt: rotated }),
      },
    };
  } catch (err) {
    return { kind: 'unusable', reason: (err as Error).message };
  }
}

/**
 * The certificates of the Secret's ca.crt that can be read, whatever else is wrong with
 * the Secret: when it is unusable they must stay trusted while the pods still serve a
 * certificate one of them signed.
 */
export function bundledCertificates(secret: V1Secret): CertificateInfo[] {
  const value = secret.data?.[secretKeys.caBundle];
  if (value === undefined) return [];
  const where = `Secret ${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
  return readableCertificates(Buffer.from(value, 'base64').toString('utf8'), `${secretKeys.caBundle} of ${where}`);
}

/** The trust bundle: the signing CA first, then the CAs kept for the rotation, each once. */
export function caBundlePem(signingCa: CertificateInfo, keptCas: readonly CertificateInfo[]): string {
  const seen = new Set<string>();
  return [signingCa, ...keptCas]
    .filter((ca) => !seen.has(ca.fingerprint) && seen.add(ca.fingerprint))
    .map((ca) => ca.pem)
    .join('');
}

export interface SecretContent {
  readonly servingCertPem: string;
  readonly servingKeyPem: string;
  readonly caBundlePem: string;
  readonly caKeyPem: string;
  readonly caRotatedAt: Date | undefined;
}

/** The Secret holding `content`; `base` keeps the metadata (resourceVersion, labels) of the stored one. */
export function buildCertificateSecret(name: string, namespace: string, content: SecretContent, base?: V1Secret): V1Secret {
  const annotations = { ...base?.metadata?.annotations };
  // Set, or removed: a stale or unreadable time copied forward would be read again on every run.
  if (content.caRotatedAt) annotations[caRotatedAtAnnotation] = content.caRotatedAt.toISOString();
  else delete annotations[caRotatedAtAnnotation];
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      ...base?.metadata,
      name,
      namespace,
      labels: { 'app.kubernetes.io/name': 'zkleader', 'app.kubernetes.io/component': 'webhook-certificates', ...base?.metadata?.labels },
      annotations,
    },
    data: {
      [secretKeys.cert]: b64(content.servingCertPem),
      [secretKeys.key]: b64(content.servingKeyPem),
      [secretKeys.caBundle]: b64(content.caBundlePem),
      [secretKeys.caKey]: b64(content.caKeyPem),
    },
  };
}

/** True when writing `desired` over `stored` would change what the Secret holds. */
export function secretDiffers(stored: V1Secret, desired: V1Secret): boolean {
  const keys = Object.values(secretKeys);
  return (
    stored.type !== desired.type ||
    keys.some((k) => stored.data?.[k] !== desired.data?.[k]) ||
    stored.metadata?.annotations?.[caRotatedAtAnnotation] !== desired.metadata?.annotations?.[caRotatedAtAnnotation]
  );
}
