import { beforeAll, describe, expect, it } from '@jest/globals';
import { type CertificatePair, createCertificateAuthority, createServingCertificate, webhookDnsNames } from '../../../certs/certificateAuthority.js';
import { readCertificate } from '../../../certs/certificateInfo.js';
import { type StoredCertificates, isDueForRotation, planRotation } from '../../../certs/rotationPlan.js';

const dayMs = 24 * 60 * 60 * 1000;
const hourMs = 60 * 60 * 1000;
const t0 = new Date('2026-01-01T00:00:00.000Z');
const at = (days: number) => new Date(t0.getTime() + days * dayMs);
const dnsNames = webhookDnsNames('zkleader-webhook', 'zkleader-system');
const policy = (now: Date) => ({ now, dnsNames, ipAddresses: [], graceMs: hourMs });

let oldCa: CertificatePair;
let newCa: CertificatePair;
let servingOld: CertificatePair; // from oldCa at t0, 365 days
let servingNew: CertificatePair; // from newCa at t0 + 2500 days

function stored(ca: CertificatePair, serving: CertificatePair, bundle: CertificatePair[], caRotatedAt?: Date, unreadableCaRotatedAt?: string): StoredCertificates {
  return {
    signingCa: readCertificate(ca.certPem, 'ca'),
    caKeyPem: ca.keyPem,
    serving: readCertificate(serving.certPem, 'serving'),
    servingKeyPem: serving.keyPem,
    trustedCas: bundle.map((c, i) => readCertificate(c.certPem, `bundle ${i}`)),
    caRotatedAt,
    ...(unreadableCaRotatedAt !== undefined && { unreadableCaRotatedAt }),
  };
}

const fingerprint = (pair: CertificatePair) => readCertificate(pair.certPem, 'x').fingerprint;

beforeAll(async () => {
  oldCa = await createCertificateAuthority({ now: t0 });
  newCa = await createCertificateAuthority({ now: at(2500) });
  servingOld = await createServingCertificate(oldCa, { dnsNames, now: t0 });
  servingNew = await createServingCertificate(newCa, { dnsNames, now: at(2500) });
});

describe('isDueForRotation', () => {
  it('is due once less than a third of the life is left', () => {
    const cert = readCertificate(servingOld.certPem, 'serving');
    // notBefore is back-dated 5 minutes; 365 days of life, due at 2/3 of it.
    const dueAt = cert.notBefore.getTime() + (365 * dayMs * 2) / 3;
    expect(isDueForRotation(cert, new Date(dueAt - 1000))).toBe(false);
    expect(isDueForRotation(cert, new Date(dueAt + 1000))).toBe(true);
    expect(isDueForRotation(cert, at(400))).toBe(true);
  });
});

describe('planRotation', () => {
  it('issues everything when nothing is stored, with the given reason', () => {
    expect(planRotation(undefined, policy(t0), 'Secret x/y does not exist')).toEqual({
      issueCa: true,
      issueServing: true,
      keptCas: [],
      caRotatedAt: undefined,
      reasons: ['Secret x/y does not exist'],
    });
  });

  it('does nothing while both certificates are fresh', () => {
    const plan = planRotation(stored(oldCa, servingOld, [oldCa]), policy(at(200)));
    expect(plan).toEqual({ issueCa: false, issueServing: false, keptCas: [], caRotatedAt: undefined, reasons: [] });
  });

  it('renews only the serving certificate when a third of its life is left, keeping the CA', () => {
    const plan = planRotation(stored(oldCa, servingOld, [oldCa]), policy(at(250)));
    expect(plan.issueCa).toBe(false);
    expect(plan.issueServing).toBe(true);
    expect(plan.keptCas).toEqual([]);
    // The signing CA is unchanged, so no grace period starts.
    expect(plan.caRotatedAt).toBeUndefined();
    expect(plan.reasons).toEqual(['the serving certificate expires 2026-12-31T23:55:00.000Z, less than a third of its life away']);
  });

  it('renews the serving certificate when its names are not the wanted ones', () => {
    const plan = planRotation(stored(oldCa, servingOld, [oldCa]), { now: at(10), dnsNames: webhookDnsNames('other', 'ns'), ipAddresses: [], graceMs: hourMs });
    expect(plan.issueServing).toBe(true);
    expect(plan.issueCa).toBe(false);
    expect(plan.reasons[0]).toContain('expected other,other.ns,other.ns.svc,other.ns.svc.cluster.local');
  });

  it('rotates the CA when a third of its life is left and keeps the old CA in the bundle', () => {
    const now = at(2500);
    const plan = planRotation(stored(oldCa, servingOld, [oldCa]), policy(now));
    expect(plan.issueCa).toBe(true);
    expect(plan.issueServing).toBe(true);
    expect(plan.keptCas.map((c) => c.fingerprint)).toEqual([fingerprint(oldCa)]);
    expect(plan.caRotatedAt).toEqual(now);
    expect(plan.reasons[0]).toMatch(/^the CA expires .* less than a third of its life away$/);
  });

  it('keeps the replaced CA during the grace period, then drops it', () => {
    const rotatedAt = at(2500);
    const afterRotation = stored(newCa, servingNew, [newCa, oldCa], rotatedAt);
    const during = planRotation(afterRotation, policy(new Date(rotatedAt.getTime() + hourMs - 1)));
    expect(during).toEqual({ issueCa: false, issueServing: false, keptCas: [expect.objectContaining({ fingerprint: fingerprint(oldCa) })], caRotatedAt: rotatedAt, reasons: [] });

    const after = planRotation(afterRotation, policy(new Date(rotatedAt.getTime() + hourMs)));
    expect(after.issueCa).toBe(false);
    expect(after.issueServing).toBe(false);
    expect(after.keptCas).toEqual([]);
    expect(after.reasons).toEqual([`dropping the old CA ${fingerprint(oldCa)} from the bundle: no served certificate uses it since ${rotatedAt.toISOString()}`]);
  });

  it('drops an expired CA even during the grace period', () => {
    const now = at(3651);
    const plan = planRotation(stored(newCa, servingNew, [newCa, oldCa], new Date(now.getTime() - 1000)), policy(now));
    expect(plan.keptCas).toEqual([]);
    expect(plan.reasons).toContain(`dropping the expired CA ${fingerprint(oldCa)} from the bundle`);
  });

  it('moves a serving certificate signed by an old CA to the signing CA and starts a grace period', () => {
    const now = at(2501);
    const plan = planRotation(stored(newCa, servingOld, [newCa, oldCa]), policy(now));
    expect(plan.issueCa).toBe(false);
    expect(plan.issueServing).toBe(true);
    expect(plan.caRotatedAt).toEqual(now);
    expect(plan.keptCas.map((c) => c.fingerprint)).toEqual([fingerprint(oldCa)]);
    expect(plan.reasons).toContain('the serving certificate was not issued by the signing CA');
  });
});

describe('planRotation: certificates not valid yet', () => {
  it('reissues a serving certificate whose notBefore is in the future: it cannot be served', async () => {
    const future = await createServingCertificate(oldCa, { dnsNames, now: at(30) });
    const plan = planRotation(stored(oldCa, future, [oldCa]), policy(at(10)));
    expect(plan.issueServing).toBe(true);
    expect(plan.issueCa).toBe(false);
    expect(plan.caRotatedAt).toBeUndefined();
    expect(plan.reasons).toEqual([
      `the serving certificate is not valid before ${readCertificate(future.certPem, 's').notBefore.toISOString()}, which is in the future, so it cannot be served`,
    ]);
  });

  it('issues a new CA when the signing CA is not valid yet, keeping it for the grace period', () => {
    // newCa starts at day 2500; at day 100 nothing it signs verifies.
    const plan = planRotation(stored(newCa, servingNew, [newCa]), policy(at(100)));
    expect(plan.issueCa).toBe(true);
    expect(plan.issueServing).toBe(true);
    expect(plan.reasons[0]).toMatch(/^the CA is not valid before .*, which is in the future, so no certificate it signs verifies yet$/);
    expect(plan.keptCas.map((c) => c.fingerprint)).toEqual([fingerprint(newCa)]);
    expect(plan.caRotatedAt).toEqual(at(100));
  });
});

describe('planRotation: the zkleader.io/ca-rotated-at time', () => {
  const rotation = () => stored(newCa, servingNew, [newCa, oldCa]);

  it('counts the grace period from now when the time is in the future, so old CAs are dropped a grace period later, not never', () => {
    const now = at(2501);
    const future = at(5000);
    const plan = planRotation({ ...rotation(), caRotatedAt: future }, policy(now));
    expect(plan.caRotatedAt).toEqual(now);
    expect(plan.keptCas.map((c) => c.fingerprint)).toEqual([fingerprint(oldCa)]);
    expect(plan.reasons).toEqual([`the CA rotation time ${future.toISOString()} is in the future; the old CAs stay trusted for the grace period from now (${now.toISOString()})`]);
    // The next run reads what this one wrote: the old CA goes once the grace period is over.
    const later = planRotation({ ...rotation(), caRotatedAt: plan.caRotatedAt }, policy(new Date(now.getTime() + hourMs)));
    expect(later.keptCas).toEqual([]);
    expect(later.reasons).toEqual([`dropping the old CA ${fingerprint(oldCa)} from the bundle: no served certificate uses it since ${now.toISOString()}`]);
  });

  it('drops a future time when no rotation is in progress', () => {
    const plan = planRotation(stored(oldCa, servingOld, [oldCa], at(5000)), policy(at(10)));
    expect(plan).toEqual({
      issueCa: false,
      issueServing: false,
      keptCas: [],
      caRotatedAt: undefined,
      reasons: [`the CA rotation time ${at(5000).toISOString()} is in the future; dropping it, no CA rotation is in progress`],
    });
  });

  it('treats an unreadable time as absent: dropped without a rotation, the grace period from now with one', () => {
    const alone = planRotation(stored(oldCa, servingOld, [oldCa], undefined, 'yesterday'), policy(at(10)));
    expect(alone).toEqual({
      issueCa: false,
      issueServing: false,
      keptCas: [],
      caRotatedAt: undefined,
      reasons: ['the CA rotation time "yesterday" is not an ISO 8601 time; dropping it, no CA rotation is in progress'],
    });
    const now = at(2501);
    const during = planRotation(stored(newCa, servingNew, [newCa, oldCa], undefined, 'yesterday'), policy(now));
    expect(during.issueCa || during.issueServing).toBe(false);
    expect(during.caRotatedAt).toEqual(now);
    expect(during.keptCas.map((c) => c.fingerprint)).toEqual([fingerprint(oldCa)]);
  });
});

describe('planRotation: IP address SANs', () => {
  let withIp: CertificatePair;
  beforeAll(async () => {
    withIp = await createServingCertificate(oldCa, { dnsNames, ipAddresses: ['127.0.0.1', '::1'], now: t0 });
  });
  const ipPolicy = (ipAddresses: string[]) => ({ ...policy(at(10)), ipAddresses });

  it('keeps a certificate with the wanted addresses, however IPv6 is spelled', () => {
    expect(planRotation(stored(oldCa, withIp, [oldCa]), ipPolicy(['127.0.0.1', '0:0:0:0:0:0:0:1'])).issueServing).toBe(false);
  });

  it('reissues when an address is added, changed or removed', () => {
    const changed = planRotation(stored(oldCa, withIp, [oldCa]), ipPolicy(['10.0.0.1']));
    expect(changed.issueServing).toBe(true);
    expect(changed.issueCa).toBe(false);
    expect(changed.reasons).toEqual(['the serving certificate has the IP addresses 127.0.0.1,::1, expected 10.0.0.1']);
    expect(planRotation(stored(oldCa, withIp, [oldCa]), ipPolicy([])).reasons).toEqual(['the serving certificate has the IP addresses 127.0.0.1,::1, expected none']);
    expect(planRotation(stored(oldCa, servingOld, [oldCa]), ipPolicy(['127.0.0.1'])).reasons).toEqual(['the serving certificate has the IP addresses none, expected 127.0.0.1']);
  });
});

describe('planRotation: a missing or unusable Secret', () => {
  it('keeps every unexpired CA trusted so far for the grace period next to the new one', () => {
    const now = at(3000);
    const plan = planRotation(undefined, policy(now), 'Secret x/y has no ca.key', [
      readCertificate(newCa.certPem, 'ca.crt'),
      readCertificate(oldCa.certPem, 'caBundle'),
      readCertificate(newCa.certPem, 'caBundle'),
    ]);
    expect(plan.issueCa && plan.issueServing).toBe(true);
    // Each once; at day 3000 both are unexpired.
    expect(plan.keptCas.map((c) => c.fingerprint)).toEqual([fingerprint(newCa), fingerprint(oldCa)]);
    expect(plan.caRotatedAt).toEqual(now);
    expect(plan.reasons).toEqual([
      'Secret x/y has no ca.key',
      `keeping the 2 CA(s) trusted so far in the bundle next to the new CA until ${new Date(now.getTime() + hourMs).toISOString()}, so the certificate the webhook pods serve now still verifies`,
    ]);
  });

  it('drops the expired ones, and starts no grace period when none is left', () => {
    const now = at(3700);
    const plan = planRotation(undefined, policy(now), 'Secret x/y has no ca.key', [readCertificate(oldCa.certPem, 'ca.crt')]);
    expect(plan.keptCas).toEqual([]);
    expect(plan.caRotatedAt).toBeUndefined();
    expect(plan.reasons).toEqual(['Secret x/y has no ca.key', `dropping the expired CA ${fingerprint(oldCa)} from the bundle`]);
  });
});
