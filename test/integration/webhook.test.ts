import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { applyPatch, type PatchOperation } from '../../src/patch.js';
import type { RunningWebhook } from '../../src/webhookServer.js';
import { goldenDir } from '../support/goldenInject.js';
import { admissionReviewFor, httpsRequest, loopbackCertificates, startLoopbackWebhook, temporaryDirectory, writePair, type HttpAnswer } from '../support/webhookClient.js';

let webhook: RunningWebhook;

let ca: string;
let dir: string;
let agent: Agent;
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const { ca: authority, serving } = await loopbackCertificates();
  ca = authority.certPem;
  dir = temporaryDirectory('zkleader-webhook-');
  const { certFile, keyFile } = writePair(dir, serving);
  const logStream = new PassThrough();
  logStream.on('data', (line: Buffer) => logLines.push(JSON.parse(line.toString()) as Record<string, unknown>));
  webhook = await startLoopbackWebhook({ tlsCertFile: certFile, tlsKeyFile: keyFile, logger: pino({ level: 'debug' }, logStream) });
  agent = new Agent({ keepAlive: true, maxSockets: 4 });
});

afterAll(async () => {
  agent?.destroy();
  await webhook?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function mutate(body: unknown, headers?: Record<string, string>): Promise<HttpAnswer> {
  return httpsRequest(webhook.port, { path: '/mutate', body, ca, agent, ...(headers && { headers }) });
}

interface ReviewAnswer {
  apiVersion: string;
  kind: string;
  response: { uid: string; allowed: boolean; patchType?: string; patch?: string; status?: { code: number; message: string }; warnings?: string[] };
}

describe('the webhook over HTTPS', () => {
  it.each(['bare-pod', 'existing-volumes-and-init-containers', 'classic-mode', 'automount-off', 'label-off', 'reinvoked-new-container', 'config-only', 'config-and-election'])(
    '%s: the decoded patch applied to the input equals the offline output',
    async (name) => {
      const input = parseYaml(readFileSync(join(goldenDir, `${name}.yaml`), 'utf8')) as object;
      const offline = parseYaml(readFileSync(join(goldenDir, `${name}.injected.yaml`), 'utf8')) as object;
      const answer = await mutate(admissionReviewFor(input, `uid-${name}`));
      expect(answer.status).toBe(200);
      const review = answer.json as ReviewAnswer;
      expect(review).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: `uid-${name}`, allowed: true, patchType: 'JSONPatch' } });
      const patch = JSON.parse(Buffer.from(review.response.patch ?? '', 'base64').toString()) as PatchOperation[];
      expect(applyPatch(input, patch)).toEqual(offline);
    },
  );

  it('allows an already injected pod without a patch', async () => {
    const input = parseYaml(readFileSync(join(goldenDir, 'already-injected.yaml'), 'utf8')) as object;
    const review = (await mutate(admissionReviewFor(input, 'uid-again'))).json as ReviewAnswer;
    expect(review.response).toEqual({ uid: 'uid-again', allowed: true });
  });

  it('denies a refused pod with code 400, the message and the warnings', async () => {
    const input = parseYaml(readFileSync(join(goldenDir, 'refused-session-timeout.yaml'), 'utf8')) as { metadata: { annotations: Record<string, string> } };
    input.metadata.annotations['zkleader.io/colour'] = 'blue';
    const answer = await mutate(admissionReviewFor(input, 'uid-refused'));
    expect(answer.status).toBe(200);
    expect((answer.json as ReviewAnswer).response).toEqual({
      uid: 'uid-refused',
      allowed: false,
      status: { code: 400, message: 'zkleader: annotation zkleader.io/session-timeout: expected a duration from 4s to 40s, got "2s"' },
      warnings: ['unknown annotation zkleader.io/colour is ignored (a typo?)'],
    });
  });

  it.each([
    ['broken JSON', '{"apiVersion": ', /^malformed request body: /],
    ['a JSON string', '"AdmissionReview"', /^malformed request body: /],
    ['an empty body', '', /^malformed AdmissionReview: apiVersion: expected "admission.k8s.io\/v1", got null/],
    ['a wrong apiVersion', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), /apiVersion: expected "admission.k8s.io\/v1"/],
    ['a wrong kind', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'Pod' }), /kind: expected "AdmissionReview"/],
    ['no request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request: expected an object/],
  ])('answers %s with 400 and a JSON error', async (_what, body, message) => {
    const answer = await mutate(body);
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect((answer.json as { error: string }).error).toMatch(message);
  });

  it('answers a body over 2 MiB with 413, and still takes one just under it', async () => {
    const pod = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as { metadata: { annotations: Record<string, string> } };
    pod.metadata.annotations['example.com/padding'] = 'x'.repeat(2 * 1024 * 1024);
    const tooLarge = await mutate(admissionReviewFor(pod, 'uid-large'));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json).toEqual({ error: 'request body larger than 2 MiB (2097152 bytes)' });
    pod.metadata.annotations['example.com/padding'] = 'x'.repeat(2 * 1024 * 1024 - 2048);
    const justUnder = await mutate(admissionReviewFor(pod, 'uid-almost'));
    expect(justUnder.status).toBe(200);
    expect((justUnder.json as ReviewAnswer).response).toMatchObject({ uid: 'uid-almost', allowed: true, patchType: 'JSONPatch' });
  });

  it('answers a request whose body never arrives in full with 408 and closes the connection', async () => {
    const stalled = await startLoopbackWebhook({ tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key'), requestTimeoutMs: 500 });
    try {
      const socket = connect({ host: '127.0.0.1', port: stalled.port, ca });
      await once(socket, 'secureConnect');
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString()));
      socket.write('POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"apiVersion":');
      await once(socket, 'close');
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      await stalled.close();
    }
  });

  it('answers other methods and paths with a JSON error', async () => {
    const get = await httpsRequest(webhook.port, { method: 'GET', path: '/mutate', ca, agent });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    const other = await httpsRequest(webhook.port, { method: 'POST', path: '/validate', body: {}, ca, agent });
    expect(other.status).toBe(404);
    expect(other.json).toEqual({ error: 'no route POST /validate; expected POST /mutate' });
  });

  it('is healthy and ready with a certificate loaded', async () => {
    expect((await httpsRequest(webhook.port, { method: 'GET', path: '/healthz', ca, agent })).status).toBe(200);
    expect((await httpsRequest(webhook.port, { method: 'GET', path: '/readyz', ca, agent })).json).toEqual({ status: 'ready' });
  });

  it('logs every admission with its request uid', async () => {
    await mutate(admissionReviewFor(parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')), 'uid-logged'));
    const line = logLines.find((l) => l.uid === 'uid-logged');
    expect(line).toMatchObject({ msg: 'admission', outcome: 'injected', namespace: 'default', pod: 'orders-0' });
  });

  it('never crashes and never hangs on random or broken bodies (fast-check): a review for the same uid, or a 4xx JSON error', async () => {
    const podValue = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as unknown;
    const body = fc.oneof(
      fc.string(),
      fc.json(),
      fc.anything().map((v) => JSON.stringify(v) ?? 'undefined'),
      fc
        .record({ uid: fc.uuid(), operation: fc.constantFrom('CREATE', 'UPDATE'), object: fc.oneof(fc.constant(podValue), fc.anything(), fc.object()) })
        .map(({ uid, operation, object }) => JSON.stringify(admissionReviewFor(object, uid, { operation }))),
    );
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        const answer = await mutate(payload);
        if (answer.status === 200) {
          const review = answer.json as ReviewAnswer;
          expect(review.apiVersion).toBe('admission.k8s.io/v1');
          expect(review.response.uid).toBe((JSON.parse(payload) as { request: { uid: string } }).request.uid);
        } else {
          expect(answer.status).toBeGreaterThanOrEqual(400);
          expect(answer.status).toBeLessThan(500);
          expect(typeof (answer.json as { error: unknown }).error).toBe('string');
        }
      }),
      { numRuns: 150 },
    );
  });

  it('counts admissions by outcome and reason, and their latency, on the metrics port', async () => {
    const metrics = await fetch(`http://127.0.0.1:${webhook.metricsPort}/metrics`).then((r) => r.text());
    const count = (labels: string) => Number(new RegExp(`^zkleader_webhook_admissions_total\\{${labels}\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
    expect(count('outcome="injected",reason=""')).toBeGreaterThanOrEqual(8);
    expect(count('outcome="skipped",reason="already-injected"')).toBeGreaterThanOrEqual(1);
    expect(count('outcome="refused",reason=""')).toBeGreaterThanOrEqual(1);
    expect(count('outcome="error",reason="malformed"')).toBeGreaterThanOrEqual(6);
    expect(count('outcome="error",reason="too-large"')).toBe(1);
    expect(metrics).toMatch(/^zkleader_webhook_admission_duration_seconds_bucket\{le="0.01",outcome="injected"\} \d+$/m);
    expect((await fetch(`http://127.0.0.1:${webhook.metricsPort}/readyz`)).status).toBe(200);
  });
});

describe('a webhook started before its certificate exists', () => {
  it('is not ready until the files appear, then serves with them', async () => {
    const emptyDir = temporaryDirectory('zkleader-webhook-nocert-');
    const later = await startLoopbackWebhook({ tlsCertFile: join(emptyDir, 'tls.crt'), tlsKeyFile: join(emptyDir, 'tls.key'), certificatePollMs: 200 });
    try {
      const ready = () => fetch(`http://127.0.0.1:${later.metricsPort}/readyz`).then((r) => r.status);
      expect(await ready()).toBe(503);
      await expect(httpsRequest(later.port, { method: 'GET', path: '/readyz', ca })).rejects.toThrow();
      const { serving, ca: authority } = await loopbackCertificates();
      writeFileSync(join(emptyDir, 'tls.key'), serving.keyPem);
      writeFileSync(join(emptyDir, 'tls.crt'), serving.certPem);
      const deadline = Date.now() + 10_000;
      while ((await ready()) !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await ready()).toBe(200);
      expect((await httpsRequest(later.port, { method: 'GET', path: '/readyz', ca: authority.certPem })).json).toEqual({ status: 'ready' });
    } finally {
      await later.close();
      rmSync(emptyDir, { recursive: true, force: true });
    }
  });
});

/** GET over HTTPS to host (an IPv4 or IPv6 address), checking the certificate for localhost. */
function httpsGet(host: string, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, ca, servername: 'localhost', agent: false, signal: AbortSignal.timeout(5000) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a webhook on [::] (the default --listen and --metrics-listen host)', () => {
  it('answers on 127.0.0.1 and on ::1, HTTPS and metrics alike', async () => {
    const dual = await startLoopbackWebhook({ listen: { host: '::', port: 0 }, metricsListen: { host: '::', port: 0 }, tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key') });
    try {
      for (const host of ['127.0.0.1', '::1']) {
        expect(await httpsGet(host, dual.port, '/readyz')).toBe(200);
        expect((await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${dual.metricsPort}/readyz`)).status).toBe(200);
      }
      const review = (await httpsRequest(dual.port, { path: '/mutate', body: admissionReviewFor(parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')), 'uid-dual'), ca })).json as ReviewAnswer;
      expect(review.response).toMatchObject({ uid: 'uid-dual', allowed: true });
    } finally {
      await dual.close();
    }
  });
});

describe('drain()', () => {
  it('answers /readyz 503 on both servers while still admitting pods (closing each connection after its answer); a cut ends it at once', async () => {
    const draining = await startLoopbackWebhook({ tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key') });
    const cut = new AbortController();
    let drained = false;
    const drain = draining.drain(60_000, cut.signal).then(() => (drained = true));
    try {
      expect(draining.draining).toBe(true);
      const readyz = await httpsRequest(draining.port, { method: 'GET', path: '/readyz', ca });
      expect(readyz.status).toBe(503);
      expect(readyz.json).toMatchObject({ status: 'draining', reason: expect.stringContaining('still serves POST /mutate') });
      const metricsReadyz = await fetch(`http://127.0.0.1:${draining.metricsPort}/readyz`);
      expect(metricsReadyz.status).toBe(503);
      expect(await metricsReadyz.text()).toMatch(/^draining: /);
      expect((await fetch(`http://127.0.0.1:${draining.metricsPort}/healthz`)).status).toBe(200);
      expect((await httpsRequest(draining.port, { method: 'GET', path: '/healthz', ca })).status).toBe(200);
      const answer = await httpsRequest(draining.port, { path: '/mutate', body: admissionReviewFor(parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')), 'uid-drain'), ca });
      expect(answer.status).toBe(200);
      expect(answer.headers.connection).toBe('close');
      expect((answer.json as ReviewAnswer).response).toMatchObject({ uid: 'uid-drain', allowed: true, patchType: 'JSONPatch' });
      expect(drained).toBe(false);
    } finally {
      cut.abort();
      await drain;
    }
    await expect(httpsRequest(draining.port, { method: 'GET', path: '/healthz', ca })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
