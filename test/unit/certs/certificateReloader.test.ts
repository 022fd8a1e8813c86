import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { type CertificatePair, createCertificateAuthority, createServingCertificate } from '../../../certs/certificateAuthority.js';
import { readCertificate } from '../../../certs/certificateInfo.js';
import { CertificateReloader, type CertificatePairPem } from '../../../src/certificateReloader.js';

const dayMs = 24 * 60 * 60 * 1000;
const t0 = Date.parse('2026-03-01T12:00:00.000Z');

let dir: string;
let certFile: string;
let keyFile: string;
let valid: CertificatePair; // valid at t0, for 30 days
let expired: CertificatePair; // expired 10 days before t0
let notYetValid: CertificatePair; // valid from 20 days after t0

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zkleader-reloader-'));
  certFile = join(dir, 'tls.crt');
  keyFile = join(dir, 'tls.key');
  const ca = await createCertificateAuthority({ now: new Date(t0 - 100 * dayMs) });
  const serving = (daysFromT0: number, validityDays: number) =>
    createServingCertificate(ca, { dnsNames: ['localhost'], now: new Date(t0 + daysFromT0 * dayMs), validityDays });
  [valid, expired, notYetValid] = await Promise.all([serving(0, 30), serving(-40, 30), serving(20, 30)]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const validity = (pair: CertificatePair) => {
  const cert = readCertificate(pair.certPem, 'test');
  return { notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() };
};

function write(pair: CertificatePair): void {
  writeFileSync(certFile, pair.certPem);
  writeFileSync(keyFile, pair.keyPem);
}

/** A reloader on the test's files whose clock, installs, results and logs the test sees. */
function harness() {
  const h = {
    now: t0,
    applied: [] as CertificatePairPem[],
    results: [] as string[],
    logs: [] as { level: number; msg: string; [key: string]: unknown }[],
    reloader: undefined as unknown as CertificateReloader,
  };
  h.reloader = new CertificateReloader({
    certFile,
    keyFile,
    apply: (pair) => h.applied.push(pair),
    onResult: (result) => h.results.push(result),
    logger: pino({ level: 'info' }, { write: (line: string) => void h.logs.push(JSON.parse(line)) }),
    clock: () => h.now,
  });
  return h;
}

const errors = (h: ReturnType<typeof harness>) => h.logs.filter((l) => l.level >= 50);

describe('CertificateReloader: certificates outside their validity period', () => {
  beforeEach(() => write(valid));

  it('loads a pair valid now and is ready', () => {
    const h = harness();
    h.reloader.reload();
    expect(h.applied.map((p) => p.cert)).toEqual([valid.certPem]);
    expect(h.results).toEqual(['loaded']);
    expect(h.reloader.loaded).toBe(true);
    expect(h.reloader.status()).toEqual({ ready: true });
  });

  it('refuses an expired pair at start: nothing installed, not ready, the error names the file and the dates', () => {
    write(expired);
    const h = harness();
    h.reloader.reload();
    expect(h.applied).toEqual([]);
    expect(h.results).toEqual(['rejected']);
    expect(h.reloader.loaded).toBe(false);
    expect(h.reloader.status()).toEqual({ ready: false, reason: 'no serving certificate loaded' });
    const { notBefore, notAfter } = validity(expired);
    expect(errors(h)).toEqual([
      expect.objectContaining({
        msg: `the certificate in ${certFile} expired at ${notAfter} (valid from ${notBefore} to ${notAfter}); not ready`,
        certFile,
        notBefore,
        notAfter,
      }),
    ]);
  });

  it('keeps serving the previous pair when an expired one or one not valid yet is written, and says so once', () => {
    const h = harness();
    h.reloader.reload();
    write(expired);
    h.reloader.reload();
    h.reloader.reload(); // the poll reads the same files again: no second error, no second count
    write(notYetValid);
    h.reloader.reload();
    expect(h.applied.map((p) => p.cert)).toEqual([valid.certPem]);
    expect(h.results).toEqual(['loaded', 'rejected', 'rejected']);
    expect(h.reloader.status()).toEqual({ ready: true });
    const future = validity(notYetValid);
    expect(errors(h).map((l) => l.msg)).toEqual([
      `the certificate in ${certFile} expired at ${validity(expired).notAfter} (valid from ${validity(expired).notBefore} to ${validity(expired).notAfter}); keeping the previous certificate`,
      `the certificate in ${certFile} is not valid yet, not before ${future.notBefore} (valid from ${future.notBefore} to ${future.notAfter}); keeping the previous certificate`,
    ]);
  });

  it('installs a pair that was not valid yet once its notBefore has come, without a file change', () => {
    const h = harness();
    h.reloader.reload();
    write(notYetValid);
    h.reloader.reload();
    h.now = t0 + 19 * dayMs;
    h.reloader.reload();
    expect(h.results).toEqual(['loaded', 'rejected']);
    h.now = t0 + 21 * dayMs;
    h.reloader.reload();
    expect(h.results).toEqual(['loaded', 'rejected', 'loaded']);
    expect(h.applied.map((p) => p.cert)).toEqual([valid.certPem, notYetValid.certPem]);
  });
});

describe('CertificateReloader.status', () => {
  it('is not ready once the loaded certificate has expired, naming when; loaded stays true', () => {
    write(valid);
    const h = harness();
    h.reloader.reload();
    const { notAfter } = validity(valid);
    expect(h.reloader.status(Date.parse(notAfter))).toEqual({ ready: true });
    const reason = `the serving certificate expired at ${notAfter}; the certificates job has not renewed it`;
    expect(h.reloader.status(Date.parse(notAfter) + 1000)).toEqual({ ready: false, reason });
    h.now = t0 + 31 * dayMs;
    expect(h.reloader.status()).toEqual({ ready: false, reason });
    expect(h.reloader.loaded).toBe(true);
    // The poll notices it once, in the log too.
    h.reloader.reload();
    h.reloader.reload();
    expect(errors(h).map((l) => l.msg)).toEqual([`${reason}; /readyz reports not ready`]);
  });

  it('is not ready before any pair is loaded', () => {
    rmSync(certFile, { force: true });
    const h = harness();
    h.reloader.reload();
    expect(h.reloader.status()).toEqual({ ready: false, reason: 'no serving certificate loaded' });
  });
});
