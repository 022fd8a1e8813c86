import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import type { RunningWebhook } from '../../src/webhookServer.js';
import { goldenDir } from '../support/goldenInject.js';
import { admissionReviewFor, loopbackCertificates, replaceFile, startLoopbackWebhook, temporaryDirectory, writePair } from '../support/webhookClient.js';

// The webhook's TLS and keep-alive, as the API server's Go client meets them.

let webhook: RunningWebhook;
let certs: Awaited<ReturnType<typeof loopbackCertificates>>;
let dir: string;
let certFile: string;
let keyFile: string;
const pod = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as unknown;

beforeAll(async () => {
  certs = await loopbackCertificates();
  dir = temporaryDirectory('zkleader-webhook-tls-');
  ({ certFile, keyFile } = writePair(dir, certs.serving));
  webhook = await startLoopbackWebhook({ tlsCertFile: certFile, tlsKeyFile: keyFile, certificatePollMs: 200 });
});

afterAll(async () => {
  await webhook?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A TLS handshake with the given client settings: the protocol and cipher agreed, or the error. */
async function handshake(options: ConnectionOptions, ca = certs.ca.certPem): Promise<{ protocol: string | null; cipher: string } | { error: string }> {
  const socket = connect({ host: '127.0.0.1', port: webhook.port, ca, ...options });
  try {
    await Promise.race([once(socket, 'secureConnect'), sleep(5_000).then(() => Promise.reject(new Error('no handshake within 5 s')))]);
    return { protocol: socket.getProtocol(), cipher: socket.getCipher().standardName };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  } finally {
    socket.destroy();
  }
}

describe('TLS', () => {
  it('refuses RSA key exchange with CBC and SHA-1 (AES128-SHA) on TLS 1.2', async () => {
    expect(await handshake({ maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' })).toEqual({ error: expect.stringMatching(/HANDSHAKE_FAILURE|NO_CIPHERS|NO_SHARED_CIPHER/) });
    expect(await handshake({ maxVersion: 'TLSv1.2', ciphers: 'AES256-GCM-SHA384' })).toEqual({ error: expect.stringMatching(/HANDSHAKE_FAILURE|NO_SHARED_CIPHER/) });
    expect(await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA' })).toEqual({ error: expect.stringMatching(/HANDSHAKE_FAILURE|NO_SHARED_CIPHER/) });
  });

  it('agrees ECDHE with AES-GCM on TLS 1.2, and TLS 1.3', async () => {
    expect(await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).toEqual({ protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' });
    expect(await handshake({ minVersion: 'TLSv1.3' })).toEqual({ protocol: 'TLSv1.3', cipher: expect.stringMatching(/^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/) });
  });

  it('keeps the policy through a certificate reload (setSecureContext would reset it)', async () => {
    const next = await loopbackCertificates();
    replaceFile(keyFile, next.serving.keyPem);
    replaceFile(certFile, next.serving.certPem);
    const deadline = Date.now() + 10_000;
    while (!('cipher' in (await handshake({}, next.ca.certPem))) && Date.now() < deadline) await sleep(50);
    certs = next;
    expect(await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).toMatchObject({ protocol: 'TLSv1.2' });
    expect(await handshake({ maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' })).toEqual({ error: expect.stringMatching(/HANDSHAKE_FAILURE|NO_SHARED_CIPHER/) });
  });
});

describe('keep-alive', () => {
  it('keeps idle connections longer than the API server does (90 s), with a consistent headers timeout', () => {
    expect(webhook.server.keepAliveTimeout).toBeGreaterThan(90_000);
    expect(webhook.server.headersTimeout).toBeLessThanOrEqual(webhook.server.requestTimeout);
  });

  it('serves a second request on a kept-alive connection left idle for 6 s', async () => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port: webhook.port, ca: certs.ca.certPem });
    try {
      await once(socket, 'secureConnect');
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString()));
      const post = (uid: string) => {
        const body = JSON.stringify(admissionReviewFor(pod, uid));
        received = '';
        socket.write(`POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      };
      const answer = async (uid: string) => {
        const deadline = Date.now() + 5_000;
        while (!received.includes(`"uid":"${uid}"`) && !socket.destroyed && Date.now() < deadline) await sleep(10);
        return received;
      };
      post('first');
      const first = await answer('first');
      expect(first).toMatch(/^HTTP\/1\.1 200 /);
      await sleep(6_000);
      expect(socket.destroyed).toBe(false);
      post('second');
      expect(await answer('second')).toMatch(/^HTTP\/1\.1 200 /);
      // What the server tells the client: it keeps the connection 100 s.
      expect(first).toMatch(/^Keep-Alive: timeout=100$/im);
    } finally {
      socket.destroy();
    }
  }, 20_000);
});
