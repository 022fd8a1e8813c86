import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { canonicalIp, readCertificate } from '../../../certs/certificateInfo.js';
import {
  type CertificatePair,
  createCertificateAuthority,
  createServingCertificate,
  webhookDnsNames,
} from '../../../certs/certificateAuthority.js';

const dayMs = 24 * 60 * 60 * 1000;
const now = new Date('2026-11-22T10:00:00.000Z');

let ca: CertificatePair;
let serving: CertificatePair;
const dnsNames = webhookDnsNames('zkleader-webhook', 'zkleader-system');

beforeAll(async () => {
  ca = await createCertificateAuthority();
  serving = await createServingCertificate(ca, { dnsNames, ipAddresses: ['127.0.0.1'] });
});

describe('webhookDnsNames', () => {
  it('lists the four names a Service answers to', () => {
    expect(webhookDnsNames('s', 'ns')).toEqual(['s', 's.ns', 's.ns.svc', 's.ns.svc.cluster.local']);
  });
});

describe('createCertificateAuthority', () => {
  it('makes a 10-year self-signed RSA 2048 CA with a positive 16-byte serial', async () => {
    const pair = await createCertificateAuthority({ commonName: 'test-ca', now });
    const cert = new X509Certificate(pair.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=test-ca');
    expect(cert.issuer).toBe('CN=test-ca');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBe(3650 * dayMs);
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(now.getTime());
    expect(cert.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
    expect(cert.keyUsage).toBeUndefined(); // no extended key usage on the CA
    expect(createPrivateKey(pair.keyPem).asymmetricKeyType).toBe('rsa');
    expect(cert.checkPrivateKey(createPrivateKey(pair.keyPem))).toBe(true);
  });

  it('is limited to pathlen:0 (it signs serving certificates, never another CA), and its chains still verify', async () => {
    const forgeCa = forge.pki.certificateFromPem(ca.certPem);
    expect(forgeCa.getExtension('basicConstraints')).toEqual(expect.objectContaining({ cA: true, critical: true, pathLenConstraint: 0 }));
    const dir = mkdtempSync(join(tmpdir(), 'zkleader-ca-'));
    try {
      writeFileSync(join(dir, 'ca.crt'), ca.certPem);
      writeFileSync(join(dir, 'tls.crt'), serving.certPem);
      const text = await promisify(execFile)('openssl', ['x509', '-noout', '-text', '-in', join(dir, 'ca.crt')]);
      expect(text.stdout).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      const verified = await promisify(execFile)('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.crt'), join(dir, 'tls.crt')]);
      expect(verified.stdout.trim()).toBe(`${join(dir, 'tls.crt')}: OK`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const [caCert, servingCert] = [new X509Certificate(ca.certPem), new X509Certificate(serving.certPem)];
    expect(caCert.ca).toBe(true);
    expect(servingCert.checkIssued(caCert) && servingCert.verify(caCert.publicKey)).toBe(true);
  });

  it('gives every certificate its own serial', async () => {
    const other = await createCertificateAuthority();
    expect(new X509Certificate(other.certPem).serialNumber).not.toBe(new X509Certificate(ca.certPem).serialNumber);
  });
});

describe('createServingCertificate', () => {
  it('is signed by the CA, not a CA itself, for serverAuth, with every SAN', () => {
    const cert = new X509Certificate(serving.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.subjectAltName?.split(', ')).toEqual([...dnsNames.map((n) => `DNS:${n}`), 'IP Address:127.0.0.1']);
    expect(cert.checkPrivateKey(createPrivateKey(serving.keyPem))).toBe(true);
  });

  it('reads back its IP address SANs in one spelling', () => {
    expect(readCertificate(serving.certPem, 'tls.crt').ipAddresses).toEqual(['127.0.0.1']);
    expect(['::1', '0:0:0:0:0:0:0:1', '2001:DB8:0:0:0:0:0:1', '127.0.0.1', 'not-an-ip'].map(canonicalIp)).toEqual(['::1', '::1', '2001:db8::1', '127.0.0.1', 'not-an-ip']);
  });

  it('is valid for a year by default and refuses more', async () => {
    const pair = await createServingCertificate(ca, { dnsNames: ['a'], now });
    const cert = new X509Certificate(pair.certPem);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBe(365 * dayMs);
    await expect(createServingCertificate(ca, { dnsNames: ['a'], validityDays: 366 })).rejects.toThrow(
      'validityDays: a serving certificate is valid at most 365 days, got 366',
    );
  });

  it('refuses an empty name list and a malformed IP address', async () => {
    await expect(createServingCertificate(ca, { dnsNames: [] })).rejects.toThrow('dnsNames: expected at least one');
    await expect(createServingCertificate(ca, { dnsNames: ['a'], ipAddresses: ['10.0.0'] })).rejects.toThrow(
      'ipAddresses: expected IPv4 or IPv6 addresses, got "10.0.0"',
    );
  });

  it('verifies with openssl verify -CAfile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zkleader-certs-'));
    try {
      writeFileSync(join(dir, 'ca.crt'), ca.certPem);
      writeFileSync(join(dir, 'tls.crt'), serving.certPem);
      const { stdout } = await promisify(execFile)('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.crt'), join(dir, 'tls.crt')]);
      expect(stdout.trim()).toBe(`${join(dir, 'tls.crt')}: OK`);
      const other = await createCertificateAuthority();
      writeFileSync(join(dir, 'other.crt'), other.certPem);
      await expect(promisify(execFile)('openssl', ['verify', '-CAfile', join(dir, 'other.crt'), join(dir, 'tls.crt')])).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('a TLS client trusting only the CA', () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      server = createServer({ cert: serving.certPem, key: serving.keyPem }, (socket) => socket.end('hello'));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      server.close();
    });

    function handshake(servername: string, trusted: string): Promise<string> {
      return new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, servername, ca: [trusted] }, () => {
          let data = '';
          socket.on('data', (d: Buffer) => (data += d.toString()));
          socket.on('end', () => resolve(data));
        });
        socket.on('error', reject);
      });
    }

    it.each(dnsNames)('accepts it as %s', async (name) => {
      expect(await handshake(name, ca.certPem)).toBe('hello');
    });

    it('refuses a name that is not a SAN, and a foreign CA', async () => {
      await expect(handshake('other.zkleader-system.svc', ca.certPem)).rejects.toThrow(/does not match certificate's altnames/);
      const other = await createCertificateAuthority();
      await expect(handshake(dnsNames[0] ?? '', other.certPem)).rejects.toThrow(/unable to verify|self.signed|local issuer/);
    });
  });
});
