import { generateKeyPair, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';

/** A certificate and its private key, both PEM. */
export interface CertificatePair {
  certPem: string;
  keyPem: string;
}

export const caValidityDaysDefault = 3650;
export const servingValidityDaysDefault = 365;
/** Browsers and most TLS policies refuse serving certificates valid for more than a year. */
export const servingValidityDaysMax = 365;
export const caCommonNameDefault = 'zkleader-webhook-ca';

const dayMs = 24 * 60 * 60 * 1000;
// Back-dated so that a node whose clock is a little behind still accepts a fresh certificate.
const clockSkewMs = 5 * 60 * 1000;

const generateKeyPairAsync = promisify(generateKeyPair);

/** RSA 2048 from node:crypto (OpenSSL); forge's pure-JS key generation takes seconds. */
async function rsaKeyPair(): Promise<{ publicKey: forge.pki.rsa.PublicKey; keyPem: string }> {
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    keyPem: privateKey,
  };
}

/** 16 random bytes as a positive DER integer: top bit clear, second bit set so no byte is stripped. */
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, now: Date, days: number): void {
  if (!Number.isInteger(days) || days < 1) throw new Error(`validityDays: expected a whole number of days ≥ 1, got ${days}`);
  const notBefore = new Date(now.getTime() - clockSkewMs);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + days * dayMs);
}

/**
 * Signs with SHA-256 and RSA in node:crypto: forge encodes the certificate, OpenSSL does
 * the private-key operation (forge's big-integer arithmetic is slow, 30x so under jest's vm).
 * forge's cert.sign only feeds the TBSCertificate to md.update and hands md to key.sign.
 */
function signCertificate(cert: forge.pki.Certificate, keyPem: string): void {
  let tbs = '';
  const collector = { algorithm: 'sha256', update: (bytes: string) => void (tbs += bytes) } as unknown as forge.md.MessageDigest;
  const signer = { sign: () => sign('sha256', Buffer.from(tbs, 'binary'), keyPem).toString('binary') } as unknown as forge.pki.rsa.PrivateKey;
  cert.sign(signer, collector);
}

/** forge writes CRLF line ends; OpenSSL, kubectl and the files people diff use LF. */
function certificatePem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

function subjectKeyIdentifier(cert: forge.pki.Certificate): string {
  return cert.generateSubjectKeyIdentifier().getBytes();
}

/** A self-signed CA (10 years by default, pathlen:0) that signs the webhook's serving certificates. */
export async function createCertificateAuthority(
  opts: { commonName?: string; validityDays?: number; now?: Date } = {},
): Promise<CertificatePair> {
  const keys = await rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialNumber();
  validity(cert, opts.now ?? new Date(), opts.validityDays ?? caValidityDaysDefault);
  const subject = [{ name: 'commonName', value: opts.commonName ?? caCommonNameDefault }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    // pathlen:0: this CA signs serving certificates only, never another CA, so a leaked
    // serving key cannot be turned into an intermediate CA that the caBundle would trust.
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCertificate(cert, keys.keyPem);
  return { certPem: certificatePem(cert), keyPem: keys.keyPem };
}

/**
 * A serving certificate for the given DNS names and IP addresses, signed by `ca`;
 * at most a year (servingValidityDaysMax).
 */
export async function createServingCertificate(
  ca: CertificatePair,
  opts: { dnsNames: string[]; ipAddresses?: string[]; validityDays?: number; now?: Date },
): Promise<CertificatePair> {
  const days = opts.validityDays ?? servingValidityDaysDefault;
  if (days > servingValidityDaysMax) {
    throw new Error(`validityDays: a serving certificate is valid at most ${servingValidityDaysMax} days, got ${days}`);
  }
  const ipAddresses = opts.ipAddresses ?? [];
  if (opts.dnsNames.length === 0 && ipAddresses.length === 0) {
    throw new Error('dnsNames: expected at least one DNS name or IP address for the serving certificate');
  }
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw new Error(`ipAddresses: expected IPv4 or IPv6 addresses, got ${JSON.stringify(ip)}`);
  }
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const keys = await rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialNumber();
  validity(cert, opts.now ?? new Date(), days);
  cert.setSubject([{ name: 'commonName', value: opts.dnsNames[0] ?? ipAddresses[0] ?? '' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...opts.dnsNames.map((value) => ({ type: 2, value })), ...ipAddresses.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: subjectKeyIdentifier(caCert) },
  ]);
  signCertificate(cert, ca.keyPem);
  return { certPem: certificatePem(cert), keyPem: keys.keyPem };
}

/** The names the API server may use for the webhook's Service (DESIGN.md). */
export function webhookDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}
