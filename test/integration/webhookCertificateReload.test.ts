import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { createCertificateAuthority, createServingCertificate, type CertificatePair } from '../../certs/certificateAuthority.js';
import type { RunningWebhook } from '../../src/webhookServer.js';
import { goldenDir } from '../support/goldenInject.js';
import { admissionReviewFor, httpsRequest, loopbackCertificates, startLoopbackWebhook, temporaryDirectory, writePair } from '../support/webhookClient.js';

let webhook: RunningWebhook;
let dir: string;
let certFile: string;
let keyFile: string;
let first: Awaited<ReturnType<typeof loopbackCertificates>>;
let second: Awaited<ReturnType<typeof loopbackCertificates>>;
const pod = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as unknown;

function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber.toUpperCase();
}

beforeAll(async () => {
  [first, second] = await Promise.all([loopbackCertificates(), loopbackCertificates()]);
  dir = temporaryDirectory('zkleader-reload-');
  ({ certFile, keyFile } = writePair(dir, first.serving));
  webhook = await startLoopbackWebhook({ tlsCertFile: certFile, tlsKeyFile: keyFile, certificatePollMs: 500 });
});

afterAll(async () => {
  await webhook?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('certificate reload under load', () => {
  it('serves every request while the files are replaced, keeps old connections, and ignores a bad pair', async () => {
    const ca = [first.ca.certPem, second.ca.certPem];
    const agent = new Agent({ keepAlive: true, maxSockets: 6 });
    const failures: string[] = [];
    const keptAlive: { serial: string | undefined; at: number }[] = [];
    const fresh: { serial: string | undefined; at: number }[] = [];
    let stop = false;
    let uid = 0;

    const worker = async (pooled: boolean) => {
      while (!stop) {
        try {
          const answer = await httpsRequest(webhook.port, { path: '/mutate', body: admissionReviewFor(pod, `u-${uid++}`), ca, ...(pooled && { agent }) });
          if (answer.status !== 200 || (answer.json as { response?: { allowed?: boolean } }).response?.allowed !== true) {
            failures.push(`HTTP ${answer.status}: ${answer.text.slice(0, 200)}`);
          }
          (pooled ? keptAlive : fresh).push({ serial: answer.serial, at: Date.now() });
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = [...Array.from({ length: 6 }, () => worker(true)), worker(false), worker(false)];

    try {
      await sleep(300);
      // A non-atomic update: the new certificate first, its key a moment later. In between
      // the pair does not match; the old one must stay in use.
      writeFileSync(certFile, second.serving.certPem);
      await sleep(300);
      writeFileSync(keyFile, second.serving.keyPem);
      const swappedAt = Date.now();
      const deadline = Date.now() + 10_000;
      while (!fresh.some((r) => r.at > swappedAt && r.serial === serialOf(second.serving.certPem)) && Date.now() < deadline) await sleep(50);
      await sleep(300);
      // A broken key: logged and counted, the current pair stays.
      writeFileSync(keyFile, 'not a key');
      await sleep(700);
    } finally {
      stop = true;
      await Promise.all(workers);
      agent.destroy();
    }

    expect(failures).toEqual([]);
    const serialA = serialOf(first.serving.certPem);
    const serialB = serialOf(second.serving.certPem);
    expect(keptAlive.length + fresh.length).toBeGreaterThan(100);
    // New connections moved to the new certificate and stayed there through the broken key.
    expect(fresh[0]?.serial).toBe(serialA);
    expect(fresh[fresh.length - 1]?.serial).toBe(serialB);
    // Connections opened before the swap were not dropped: they kept answering to the end.
    expect(keptAlive[keptAlive.length - 1]?.serial).toBe(serialA);
    const metrics = await webhook.metrics.registry.getSingleMetricAsString('zkleader_webhook_certificate_reloads_total');
    expect(metrics).toMatch(/result="loaded"\} 2$/m);
    expect(metrics).toMatch(/result="rejected"\} [2-9]$/m);
    expect(webhook.reloader.loaded).toBe(true);
  });
});

describe('certificate reload refuses a pair outside its validity period', () => {
  const dayMs = 24 * 60 * 60 * 1000;
  let own: RunningWebhook;
  let ownDir: string;
  let ca: CertificatePair;
  let current: CertificatePair;
  let expired: CertificatePair;
  let notYetValid: CertificatePair;
  let renewed: CertificatePair;

  beforeAll(async () => {
    const now = Date.now();
    ca = await createCertificateAuthority({ commonName: 'zkleader-test-ca', now: new Date(now - 500 * dayMs) });
    const serving = (from: number, validityDays = 365) =>
      createServingCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now: new Date(from), validityDays });
    // Signed by the CA the client trusts and matching their keys: only the dates are wrong.
    [current, expired, notYetValid, renewed] = await Promise.all([serving(now), serving(now - 400 * dayMs), serving(now + 30 * dayMs), serving(now)]);
    ownDir = temporaryDirectory('zkleader-reload-validity-');
    const files = writePair(ownDir, current);
    own = await startLoopbackWebhook({ tlsCertFile: files.certFile, tlsKeyFile: files.keyFile, certificatePollMs: 200 });
  });

  afterAll(async () => {
    await own?.close();
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  });

  const reloads = async (result: 'loaded' | 'rejected') => {
    const text = await own.metrics.registry.getSingleMetricAsString('zkleader_webhook_certificate_reloads_total');
    return Number(new RegExp(`result="${result}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  };
  /** Waits until the reloader has judged the files (a result was counted), then two more polls for a half-written pair. */
  const settled = async (counted: () => Promise<boolean>) => {
    const deadline = Date.now() + 5_000;
    while (!(await counted()) && Date.now() < deadline) await sleep(50);
    await sleep(500);
  };
  const servedSerial = async () => (await httpsRequest(own.port, { method: 'GET', path: '/healthz', ca: ca.certPem })).serial;

  it('keeps serving the old certificate (TLS handshake shows its serial) after an expired pair and a pair not valid yet are written', async () => {
    const oldSerial = serialOf(current.certPem);
    expect(await servedSerial()).toBe(oldSerial);
    const served: Record<string, string | undefined> = {};
    for (const [label, pair] of [
      ['expired', expired],
      ['not valid yet', notYetValid],
    ] as const) {
      const rejectedBefore = await reloads('rejected');
      writePair(ownDir, pair);
      await settled(async () => (await reloads('rejected')) > rejectedBefore);
      // Were the pair installed, this handshake would fail: "certificate has expired" / "certificate is not yet valid".
      served[label] = await servedSerial().catch((err: Error) => err.message);
    }
    expect(served).toEqual({ expired: oldSerial, 'not valid yet': oldSerial });
    expect(own.reloader.status()).toEqual({ ready: true });
    expect(await reloads('loaded')).toBe(1);
    expect(await reloads('rejected')).toBeGreaterThanOrEqual(2);

    // The reloader is still at work: a pair valid now replaces the old one.
    writePair(ownDir, renewed);
    await settled(async () => (await reloads('loaded')) > 1);
    expect(await servedSerial()).toBe(serialOf(renewed.certPem));
  });
});

describe('/readyz when the loaded certificate expires', () => {
  const dayMs = 24 * 60 * 60 * 1000;
  let own: RunningWebhook | undefined;
  let ownDir: string | undefined;

  afterAll(async () => {
    await own?.close();
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
  });

  it('answers 503 naming the expiry (the certificates job has not renewed it), not ok as before', async () => {
    const ca = await createCertificateAuthority({ commonName: 'zkleader-test-ca', now: new Date(Date.now() - 400 * dayMs) });
    // A year that ends about three seconds from now: certificates start five minutes before `now` (clock skew).
    const skewMs = 5 * 60 * 1000;
    const shortLived = await createServingCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now: new Date(Date.now() + 3_000 - 365 * dayMs + skewMs), validityDays: 365 });
    expect(Date.parse(new X509Certificate(shortLived.certPem).validTo) - Date.now()).toBeGreaterThan(1_000);
    ownDir = temporaryDirectory('zkleader-reload-expiry-');
    const files = writePair(ownDir, shortLived);
    own = await startLoopbackWebhook({ tlsCertFile: files.certFile, tlsKeyFile: files.keyFile, certificatePollMs: 200 });
    const metricsReadyz = async () => {
      const response = await fetch(`http://127.0.0.1:${own?.metricsPort ?? 0}/readyz`);
      return { status: response.status, text: await response.text() };
    };
    expect((await metricsReadyz()).status).toBe(200);
    const notAfter = new X509Certificate(shortLived.certPem).validTo;
    // Bounded generously: the certificate's own end, plus a second.
    await sleep(Math.max(0, Date.parse(notAfter) - Date.now()) + 1_000);
    expect(own.reloader.status()).toEqual({ ready: false, reason: expect.stringMatching(/^the serving certificate expired at \d{4}-\d\d-\d\dT.*; the certificates job has not renewed it$/) });
    expect(await metricsReadyz()).toEqual({ status: 503, text: expect.stringMatching(/^the serving certificate expired at .*\n$/) });
  }, 30_000);
});
