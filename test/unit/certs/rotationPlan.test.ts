import { beforeAll, describe, expect, it } from '@jest/globals';
import { type CertificatePair, createCertificateAuthority, createServingCertificate, webhookDnsNames } from '../../../certs/certificateAuthority.js';
import { readCertificate } from '../../../certs/certificateInfo.js';
import { type StoredCertificates, isDueForRotation, planRotation } from '../../../certs/rotationPlan.js';

const dayMs = 24 * 60 * 60 * 1000;
const hourMs = 60 * 60 * 1000;
const t0 = new Date('2026-01-01T00:00:00.000Z');
const at = (days: number) => new Date(t0.getTime() + days * dayMs);
const dnsNames = webhookDnsNames('zkleader-webhook', 'zkleader-system');
const policy = (now: Date) => ({ now, dnsNames, graceMs: hourMs });

let oldCa: CertificatePair;
let newCa: CertificatePair;
let servingOld: CertificatePair; // from oldCa at t0, 365 days
let servingNew: CertificatePair; // from newCa at t0 + 2500 days

function stored(ca: CertificatePair, serving: CertificatePair, bundle: CertificatePair[], caRotatedAt?: Date): StoredCertificates {
  return {
    signingCa: readCertificate(ca.certPem, 'ca'),
    caKeyPem: ca.keyPem,
    serving: readCertificate(serving.certPem, 'serving'),
    servingKeyPem: serving.keyPem,
    trustedCas: bundle.map((c, i) => readCertificate(c.certPem, `bundle ${i}`)),
    caRotatedAt,
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
    const plan = planRotation(stored(oldCa, servingOld, [oldCa]), { now: at(10), dnsNames: webhookDnsNames('other', 'ns'), graceMs: hourMs });
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
