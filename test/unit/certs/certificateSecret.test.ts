import { beforeAll, describe, expect, it } from '@jest/globals';
import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { type CertificatePair, createCertificateAuthority, createServingCertificate } from '../../../certs/certificateAuthority.js';
import { readCertificate, splitPemBundle } from '../../../certs/certificateInfo.js';
import { buildCertificateSecret, caBundlePem, caRotatedAtAnnotation, readCertificateSecret, secretDiffers } from '../../../certs/certificateSecret.js';
import { caBundlePatch } from '../../../certs/webhookCaBundle.js';

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
