import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';

/** What the rotation logic needs to know about one PEM certificate, read by OpenSSL. */
export interface CertificateInfo {
  readonly pem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCA: boolean;
  readonly dnsNames: readonly string[];
  /** IP address SANs, canonical (see canonicalIp). */
  readonly ipAddresses: readonly string[];
  readonly fingerprint: string;
  readonly x509: X509Certificate;
}

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, in order, each ending with a newline. */
export function splitPemBundle(text: string): string[] {
  return (text.match(pemBlock) ?? []).map((block) => `${block}\n`);
}

/**
 * One spelling per address, so SANs compare as strings: OpenSSL prints an IPv6 SAN in
 * full and upper case (2001:DB8:0:0:0:0:0:1), a flag says 2001:db8::1. IPv6 becomes the
 * compressed lower-case form of RFC 5952, IPv4 stays dotted; anything else is returned as is.
 */
export function canonicalIp(ip: string): string {
  const family = isIP(ip);
  if (family === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  if (family === 4) return new URL(`http://${ip}/`).hostname;
  return ip;
}

function subjectAltNames(x509: X509Certificate, prefix: string): string[] {
  return (x509.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith(prefix))
    .map((entry) => entry.slice(prefix.length));
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
  return {
    pem,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    isCA: x509.ca,
    dnsNames: subjectAltNames(x509, 'DNS:'),
    ipAddresses: subjectAltNames(x509, 'IP Address:').map(canonicalIp),
    fingerprint: x509.fingerprint256,
    x509,
  };
}

/**
 * The certificates of a PEM bundle that parse, in order; the others are skipped. For
 * the trust that must be kept when the rest of the Secret is unusable.
 */
export function readableCertificates(text: string, what: string): CertificateInfo[] {
  return splitPemBundle(text).flatMap((pem, i) => {
    try {
      return [readCertificate(pem, `${what} (certificate ${i + 1})`)];
    } catch {
      return [];
    }
  });
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
