import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import type { Agent} from 'node:https';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createCertificateAuthority, createServingCertificate, type CertificatePair } from '../../certs/certificateAuthority.js';
import { WebhookMetrics } from '../../src/webhookMetrics.js';
import { startWebhookServer, type RunningWebhook, type WebhookServerOptions } from '../../src/webhookServer.js';
import { goldenConfig } from './goldenInject.js';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, undefined when it is not JSON. */
  json: unknown;
  /** Serial number of the certificate the server presented. */
  serial: string | undefined;
}

/**
 * The webhook in this process with the golden config on 127.0.0.1 ports the system
 * chooses, metrics included, logging nothing unless `logger` says otherwise.
 */
export function startLoopbackWebhook(opts: Pick<WebhookServerOptions, 'tlsCertFile' | 'tlsKeyFile'> & Partial<WebhookServerOptions>): Promise<RunningWebhook> {
  return startWebhookServer({
    listen: { host: '127.0.0.1', port: 0 },
    metricsListen: { host: '127.0.0.1', port: 0 },
    config: goldenConfig(),
    logger: pino({ level: 'silent' }),
    metrics: new WebhookMetrics({ processMetrics: false }),
    ...opts,
  });
}

/** A CA and a serving certificate for 127.0.0.1 / localhost, as the webhook's tests need them. */
export async function loopbackCertificates(): Promise<{ ca: CertificatePair; serving: CertificatePair }> {
  const ca = await createCertificateAuthority({ commonName: 'zkleader-test-ca' });
  const serving = await createServingCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  return { ca, serving };
}

export function temporaryDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Replaces a file atomically (write beside it, then rename), as a Secret volume update does. */
export function replaceFile(path: string, content: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, content);
  renameSync(temporary, path);
}

export function writePair(dir: string, pair: CertificatePair): { certFile: string; keyFile: string } {
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  replaceFile(certFile, pair.certPem);
  replaceFile(keyFile, pair.keyPem);
  return { certFile, keyFile };
}

/** One HTTPS request to the webhook on 127.0.0.1; the body is sent as given (string) or as JSON. */
export function httpsRequest(
  port: number,
  opts: { method?: string; path: string; body?: unknown; ca: string | string[]; agent?: Agent; headers?: Record<string, string>; servername?: string },
): Promise<HttpAnswer> {
  const payload = opts.body === undefined ? undefined : typeof opts.body === 'string' || Buffer.isBuffer(opts.body) ? opts.body : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'POST',
        path: opts.path,
        ca: opts.ca,
        agent: opts.agent ?? false,
        headers: { 'content-type': 'application/json', ...opts.headers },
        timeout: 10_000,
        ...(opts.servername !== undefined && { servername: opts.servername }),
      },
      (res) => {
        // Read now: a keep-alive socket goes back to the agent (res.socket null) at 'end'.
        const socket = res.socket as { getPeerCertificate?: () => { serialNumber?: string } } | null;
        const serial = socket?.getPeerCertificate?.().serialNumber;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, serial });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port}${opts.path} within 10 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export function admissionReviewFor(object: unknown, uid: string, overrides: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', namespace: 'default', object, ...overrides },
  };
}
