import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { createCertificateAuthority, createServingCertificate, webhookDnsNames } from '../../certs/certificateAuthority.js';
import { releaseLoopbackPorts, reserveLoopbackPorts } from './loopbackPorts.js';
import { trackChildProcess } from './processRegistry.js';
import { admissionReviewFor, httpsRequest, type HttpAnswer } from './webhookClient.js';
import { zkleaderBin } from './repoRoot.js';

export interface WebhookProcessOptions {
  /** The Service the certificate is made for (its four DNS names, as `zkleader certs` does). */
  service: string;
  namespace: string;
  /** The webhook's --config document (src/config.ts): image, zookeeper, sidecarMode, ... */
  config: Record<string, unknown>;
  /** The --drain flag; "0" by default, so stop() is prompt where the drain is not under test. */
  drain?: string;
  /** Extra environment of the process (e.g. ZKLEADER_SIDECAR_IMAGE, as deploy/ sets it). */
  env?: Record<string, string>;
}

export interface WebhookProcess {
  /** 127.0.0.1 port of POST /mutate. */
  readonly port: number;
  /** 127.0.0.1 port of the plain-HTTP /metrics, /healthz, /readyz. */
  readonly metricsPort: number;
  /** The CA that signed the serving certificate, base64 of its PEM: the webhook configuration's caBundle. */
  readonly caBundle: string;
  readonly caPem: string;
  /** `https://127.0.0.1:PORT`, what a ServiceResolver answers for this webhook's Service. */
  readonly baseUrl: string;
  readonly running: boolean;
  logs(): string;
  /** POST /mutate of an AdmissionReview for `object`, on a new connection, as the API server sends it (TLS for the Service's name). */
  mutate(object: unknown, uid: string): Promise<HttpAnswer>;
  /** Sends a signal (while it runs). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, SIGKILL after 5 s; removes the certificates. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Runs the real `bin/zkleader webhook` on a loopback port with a fresh CA and serving
 * certificate from certs/, and resolves once it answers /readyz over TLS for its
 * Service's DNS name.
 */
export async function startWebhookProcess(opts: WebhookProcessOptions): Promise<WebhookProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'zkleader-webhook-proc-'));
  const ca = await createCertificateAuthority({ commonName: 'zkleader-e2e-ca' });
  const serving = await createServingCertificate(ca, { dnsNames: webhookDnsNames(opts.service, opts.namespace) });
  const files = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), config: join(dir, 'config.yaml') };
  writeFileSync(files.cert, serving.certPem);
  writeFileSync(files.key, serving.keyPem, { mode: 0o600 });
  writeFileSync(files.config, stringify(opts.config));
  const [port = 0, metricsPort = 0] = await reserveLoopbackPorts(2);
  const args = ['webhook', '--listen', `127.0.0.1:${port}`, '--metrics-listen', `127.0.0.1:${metricsPort}`, '--tls-cert', files.cert, '--tls-key', files.key, '--config', files.config, '--drain', opts.drain ?? '0'];
  const child = spawn(zkleaderBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...opts.env } });
  trackChildProcess(child, 'zkleader webhook');
  let logs = '';
  child.stdout.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  let running = true;
  void exited.then(() => (running = false));
  let stopping: Promise<void> | undefined;
  const servername = `${opts.service}.${opts.namespace}.svc`;
  const handle: WebhookProcess = {
    port,
    metricsPort,
    caPem: ca.certPem,
    caBundle: Buffer.from(ca.certPem).toString('base64'),
    baseUrl: `https://127.0.0.1:${port}`,
    get running() {
      return running;
    },
    logs: () => logs,
    mutate: (object, uid) => httpsRequest(port, { path: '/mutate', body: admissionReviewFor(object, uid), ca: ca.certPem, servername }),
    signal(signal) {
      if (running) child.kill(signal);
    },
    exited,
    stop() {
      stopping ??= (async () => {
        if (running) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        releaseLoopbackPorts([port, metricsPort]);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
  try {
    await waitReady(port, ca.certPem, servername, () => running);
  } catch (err) {
    await handle.stop();
    throw new Error(`zkleader webhook did not become ready: ${(err as Error).message}\n${logs}`, { cause: err });
  }
  return handle;
}

async function waitReady(port: number, ca: string, servername: string, alive: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('the process exited');
    try {
      if ((await getStatus(port, ca, servername, '/readyz')) === 200) return;
      last = 'readyz not 200';
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`not ready within ${timeoutMs} ms (${last})`);
}

function getStatus(port: number, ca: string, servername: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, servername, agent: false, signal: AbortSignal.timeout(2000) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}
