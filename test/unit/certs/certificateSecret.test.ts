import { beforeAll, describe, expect, it } from '@jest/globals';
import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { type CertificatePair, createCertificateAuthority, createServingCertificate } from '../../../certs/certificateAuthority.js';
import { readCertificate, splitPemBundle } from '../../../certs/certificateInfo.js';
import {
  buildCertificateSecret,
  bundledCertificates,
  caBundlePem,
  caRotatedAtAnnotation,
  parseCaRotatedAt,
  readCertificateSecret,
  secretDiffers,
} from '../../../certs/certificateSecret.js';
import { caBundlePatch, configuredCertificates } from '../../../certs/webhookCaBundle.js';

let ca: CertificatePair;
let otherCa: CertificatePair;
let serving: CertificatePair;
const rotatedAt = new Date('2026-05-01T00:00:00.000Z');

beforeAll(async () => {
  ca = await createCertificateAuthority();
  otherCa = await createCertificateAuthority();
  serving = await createServingCertificate(ca, { dnsNames: ['svc'] });
});

function secret(overrides: Partial<{ servingKeyPem: string; caKeyPem: string }> = {}) {
  const bundle = caBundlePem(readCertificate(ca.certPem, 'ca'), [readCertificate(otherCa.certPem, 'other')]);
  return buildCertificateSecret('tls', 'ns', {
    servingCertPem: serving.certPem,
    servingKeyPem: overrides.servingKeyPem ?? serving.keyPem,
    caBundlePem: bundle,
    caKeyPem: overrides.caKeyPem ?? ca.keyPem,
    caRotatedAt: rotatedAt,
  });
}

describe('the certificate Secret', () => {
  it('is a kubernetes.io/tls Secret whose certificates read back', () => {
    const built = secret();
    expect(built.type).toBe('kubernetes.io/tls');
    expect(Object.keys(built.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(built.metadata?.annotations?.[caRotatedAtAnnotation]).toBe(rotatedAt.toISOString());
    const reading = readCertificateSecret(built);
    if (reading.kind !== 'stored') throw new Error(reading.reason);
    const { certificates } = reading;
    expect(certificates.signingCa.pem).toBe(ca.certPem);
    expect(certificates.trustedCas.map((c) => c.pem)).toEqual([ca.certPem, otherCa.certPem]);
    expect(certificates.serving.pem).toBe(serving.certPem);
    expect(certificates.caRotatedAt).toEqual(rotatedAt);
  });

  it('finds the signing CA by its key wherever it is in the bundle', () => {
    const reading = readCertificateSecret(secret({ caKeyPem: otherCa.keyPem }));
    expect(reading.kind === 'stored' && reading.certificates.signingCa.pem).toBe(otherCa.certPem);
  });

  it('is unusable with a tls.key of another certificate, or a ca.key of no bundled CA', () => {
    expect(readCertificateSecret(secret({ servingKeyPem: ca.keyPem }))).toEqual({ kind: 'unusable', reason: 'tls.key of Secret ns/tls is not the key of tls.crt' });
    expect(readCertificateSecret(secret({ caKeyPem: serving.keyPem }))).toEqual({
      kind: 'unusable',
      reason: 'ca.key of Secret ns/tls belongs to no certificate of ca.crt',
    });
  });

  it('is unusable without a key, or with a malformed certificate', () => {
    const missing = secret();
    delete missing.data?.['ca.key'];
    expect(readCertificateSecret(missing)).toEqual({ kind: 'unusable', reason: 'Secret ns/tls has no ca.key' });
    const garbled = secret();
    if (garbled.data) garbled.data['tls.crt'] = Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n').toString('base64');
    const reading = readCertificateSecret(garbled);
    expect(reading.kind === 'unusable' && reading.reason).toMatch(/^tls.crt of Secret ns\/tls: expected a PEM certificate/);
  });

  it('differs only when a key or the rotation time changes, not for metadata', () => {
    const stored = { ...secret(), metadata: { ...secret().metadata, resourceVersion: '7', labels: { extra: 'x' } } };
    const same = buildCertificateSecret('tls', 'ns', { servingCertPem: serving.certPem, servingKeyPem: serving.keyPem, caBundlePem: caBundlePem(readCertificate(ca.certPem, 'ca'), [readCertificate(otherCa.certPem, 'o')]), caKeyPem: ca.keyPem, caRotatedAt: rotatedAt }, stored);
    expect(same.metadata?.resourceVersion).toBe('7');
    expect(same.metadata?.labels?.extra).toBe('x');
    expect(secretDiffers(stored, same)).toBe(false);
    const dropped = buildCertificateSecret('tls', 'ns', { servingCertPem: serving.certPem, servingKeyPem: serving.keyPem, caBundlePem: ca.certPem, caKeyPem: ca.keyPem, caRotatedAt: rotatedAt }, stored);
    expect(secretDiffers(stored, dropped)).toBe(true);
  });

  it('stays usable with an unreadable ca-rotated-at annotation, passing the text on for the rotation plan', () => {
    const edited = secret();
    edited.metadata = { ...edited.metadata, annotations: { [caRotatedAtAnnotation]: 'yesterday' } };
    const reading = readCertificateSecret(edited);
    if (reading.kind !== 'stored') throw new Error(`expected a usable Secret, got: ${reading.reason}`);
    expect(reading.certificates.caRotatedAt).toBeUndefined();
    expect(reading.certificates.unreadableCaRotatedAt).toBe('yesterday');
    expect(reading.certificates.signingCa.pem).toBe(ca.certPem);
  });

  it('reads only ISO 8601 times with a zone as the rotation time', () => {
    expect(parseCaRotatedAt(undefined)).toBeUndefined();
    expect(parseCaRotatedAt('2026-05-01T00:00:00.000Z')).toEqual(rotatedAt);
    expect(parseCaRotatedAt('2026-05-01T02:00+02:00')).toEqual(rotatedAt);
    // Date.parse would read "1" as 2001 and end a grace period at once.
    for (const text of ['1', 'yesterday', '2026-05-01', '2026-05-01T00:00:00', '2026-13-01T00:00:00Z', '']) expect([text, parseCaRotatedAt(text)]).toEqual([text, 'unreadable']);
  });

  it('drops the rotation annotation when there is no rotation time, instead of copying it forward', () => {
    const base = secret();
    base.metadata = { ...base.metadata, annotations: { [caRotatedAtAnnotation]: 'yesterday', other: 'kept' } };
    const bundle = caBundlePem(readCertificate(ca.certPem, 'ca'), [readCertificate(otherCa.certPem, 'other')]);
    const content = { servingCertPem: serving.certPem, servingKeyPem: serving.keyPem, caBundlePem: bundle, caKeyPem: ca.keyPem, caRotatedAt: undefined };
    const rebuilt = buildCertificateSecret('tls', 'ns', content, base);
    expect(rebuilt.metadata?.annotations).toEqual({ other: 'kept' });
    // Same keys, only the annotation goes: that alone is a change to write.
    expect(rebuilt.data).toEqual(base.data);
    expect(secretDiffers(base, rebuilt)).toBe(true);
  });

  it("reads the readable certificates of ca.crt even when the Secret is unusable", () => {
    const broken = secret();
    delete broken.data?.['ca.key'];
    if (broken.data) broken.data['ca.crt'] = Buffer.from(`${ca.certPem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n${otherCa.certPem}`).toString('base64');
    expect(readCertificateSecret(broken).kind).toBe('unusable');
    expect(bundledCertificates(broken).map((c) => c.pem)).toEqual([ca.certPem, otherCa.certPem]);
    const bare = secret();
    delete bare.data?.['ca.crt'];
    expect(bundledCertificates(bare)).toEqual([]);
  });

  it('bundles each CA once, the signing CA first', () => {
    const signing = readCertificate(ca.certPem, 'ca');
    const other = readCertificate(otherCa.certPem, 'o');
    expect(splitPemBundle(caBundlePem(signing, [other, signing, other]))).toEqual([ca.certPem, otherCa.certPem]);
  });
});

describe('caBundlePatch', () => {
  const bundle = '-----BEGIN CERTIFICATE-----\nnew\n-----END CERTIFICATE-----\n';
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const config = (bundles: (string | undefined)[]): V1MutatingWebhookConfiguration => ({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'zkleader' },
    webhooks: bundles.map((caBundle, i) => ({
      name: `w${i}.zkleader.io`,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      clientConfig: { service: { name: 's', namespace: 'ns' }, ...(caBundle !== undefined && { caBundle }) },
    })),
  });

  it('patches nothing when every entry already has the bundle', () => {
    expect(caBundlePatch(config([b64(bundle), b64(bundle)]), bundle)).toEqual([]);
  });

  it('sets the bundle on the entries that differ or lack one, guarded by their names', () => {
    const before = config([b64(bundle), undefined, b64('old')]);
    const ops = caBundlePatch(before, bundle);
    expect(ops).toEqual([
      { op: 'test', path: '/webhooks/1/name', value: 'w1.zkleader.io' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: b64(bundle) },
      { op: 'test', path: '/webhooks/2/name', value: 'w2.zkleader.io' },
      { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: b64(bundle) },
    ]);
    const after = fastJsonPatch.applyPatch(structuredClone(before), ops).newDocument;
    expect(after.webhooks?.map((w) => w.clientConfig.caBundle)).toEqual([b64(bundle), b64(bundle), b64(bundle)]);
  });
});

describe('configuredCertificates', () => {
  it("reads each readable certificate of the entries' caBundles once", () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const config: V1MutatingWebhookConfiguration = {
      metadata: { name: 'zkleader' },
      webhooks: [
        { name: 'a', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: { caBundle: b64(ca.certPem + otherCa.certPem) } },
        { name: 'b', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: { caBundle: b64(`stale${ca.certPem}`) } },
        { name: 'c', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: { caBundle: b64('not PEM') } },
        { name: 'd', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: {} },
      ],
    };
    expect(configuredCertificates(config).map((c) => c.pem)).toEqual([ca.certPem, otherCa.certPem]);
  });
});
