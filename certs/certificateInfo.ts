import { X509Certificate, createPrivateKey } from 'node:crypto';

/** What the rotation logic needs to know about one PEM certificate, read by OpenSSL. */
export interface CertificateInfo {
  readonly pem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCA: boolean;
  readonly dnsNames: readonly string[];
  readonly fingerprint: string;
  readonly x509: X509Certificate;
}

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, in order, each ending with a newline. */
export function splitPemBundle(text: string): string[] {
  return (text.match(pemBlock) ?? []).map((block) => `${block}\n`);
}

/** Parses one PEM certificate; the error names `what` (e.g. "tls.crt of Secret zkleader-system/x"). */
export function readCertificate(text: string, what: string): CertificateInfo {
  const pem = `${text.replace(/\r\n/g, '\n').trimEnd()}\n`;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch (err) {
    throw new Error(`${what}: expected a PEM certificate (${(err as Error).message})`, { cause: err });
  }
  const dnsNames = (x509.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice('DNS:'.length));
  return {
    pem,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    isCA: x509.ca,
    dnsNames,
    fingerprint: x509.fingerprint256,
    x509,
  };
}

/** True when `cert` names `ca` as its issuer and carries a valid signature of `ca`'s key. */
export function isIssuedBy(cert: CertificateInfo, ca: CertificateInfo): boolean {
  return cert.x509.checkIssued(ca.x509) && cert.x509.verify(ca.x509.publicKey);
}

/** True when the PEM private key belongs to the certificate; a malformed key is simply false. */
export function matchesPrivateKey(cert: CertificateInfo, keyPem: string): boolean {
  try {
    return cert.x509.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
