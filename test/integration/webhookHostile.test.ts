import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { JSON_SHAPE_LIMITS, MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_LARGE_REVIEWS_IN_FLIGHT, MAX_REVIEWS_IN_FLIGHT, SMALL_BODY_DEADLINE_MS, TLS_HANDSHAKE_TIMEOUT_MS } from '../../src/admissionLimits.js';
import type { RunningWebhook } from '../../src/webhookServer.js';
import { goldenDir } from '../support/goldenInject.js';
import { admissionReviewFor, httpsRequest, loopbackCertificates, startLoopbackWebhook, temporaryDirectory, writePair } from '../support/webhookClient.js';

// The webhook over real HTTPS against what anyone who reaches its Service can send: bodies
// built to be expensive, uploads that never end, connections that never speak TLS.

let ca: string;
let dir: string;
let certFile: string;
let keyFile: string;
const pod = parseYaml(readFileSync(join(goldenDir, 'bare-pod.yaml'), 'utf8')) as unknown;
const started: RunningWebhook[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  const { ca: authority, serving } = await loopbackCertificates();
  ca = authority.certPem;
  dir = temporaryDirectory('zkleader-webhook-hostile-');
  ({ certFile, keyFile } = writePair(dir, serving));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(started.map((w) => w.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A webhook of its own (each test fills its limits), its warn lines kept. */
async function start(): Promise<{ webhook: RunningWebhook; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  stream.on('data', (line: Buffer) => logs.push(JSON.parse(line.toString()) as Record<string, unknown>));
  const webhook = await startLoopbackWebhook({ tlsCertFile: certFile, tlsKeyFile: keyFile, logger: pino({ level: 'warn' }, stream) });
  started.push(webhook);
  return { webhook, logs };
}

function review(uid: string, object: unknown = pod): string {
  return JSON.stringify(admissionReviewFor(object, uid));
}

/** A review whose pod carries `payload` (raw JSON) in a field the webhook does not read. */
function reviewCarrying(payload: string): string {
  return review('hostile', { ...(pod as object), hostile: '@@' }).replace('"@@"', payload);
}

interface RawExchange {
  socket: TLSSocket;
  /** Everything the server sent so far. */
  received: () => string;
  /** Resolves when the server has closed the connection (or it failed). */
  closed: Promise<void>;
}

/** A TLS connection that sends `head` (request line and headers) and `body`, and collects the answer. */
async function rawRequest(port: number, head: string, body: string | Buffer = ''): Promise<RawExchange> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca });
  sockets.push(socket);
  await once(socket, 'secureConnect');
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(head);
  if (body.length > 0) socket.write(body);
  return { socket, received: () => received, closed };
}

function postHead(contentLength?: number): string {
  const length = contentLength === undefined ? 'Transfer-Encoding: chunked' : `Content-Length: ${contentLength}`;
  return `POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n${length}\r\n\r\n`;
}

/** Waits for a complete answer (its headers at least) or fails after timeoutMs. */
async function answerOf(exchange: RawExchange, timeoutMs: number): Promise<{ status: number; headers: string; body: string }> {
  const deadline = Date.now() + timeoutMs;
  while (!/\r\n\r\n/.test(exchange.received()) && Date.now() < deadline) await sleep(10);
  const text = exchange.received();
  const [headers = '', body = ''] = text.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(headers)?.[1] ?? 0);
  if (status === 0) throw new Error(`no answer within ${timeoutMs} ms (got ${JSON.stringify(text.slice(0, 200))})`);
  return { status, headers, body };
}

async function metric(webhook: RunningWebhook, pattern: RegExp): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${webhook.metricsPort}/metrics`).then((r) => r.text());
  return Number(pattern.exec(text)?.[1] ?? NaN);
}

async function until(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

describe('bodies', () => {
  it('answers a declared body over the limit with 413 at once, without reading it, and closes the connection', async () => {
    const { webhook } = await start();
    const tooLarge = MAX_BODY_BYTES + 512 * 1024;
    const started = Date.now();
    const exchange = await rawRequest(webhook.port, postHead(tooLarge), '{"apiVersion":"admission.k8s.io/v1",');
    const answer = await answerOf(exchange, 5_000);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual({ error: 'request body larger than 2 MiB (2097152 bytes)' });
    expect(answer.headers).toMatch(/^Connection: close$/im);
    await exchange.closed;
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('answers a chunked body with 413 once it passes the limit, before the client has sent it all', async () => {
    const { webhook } = await start();
    const exchange = await rawRequest(webhook.port, postHead());
    const chunk = Buffer.alloc(64 * 1024, ' ');
    let sent = 0;
    // 4 MiB in 64 KiB chunks, paced: the answer must come before the end.
    while (sent < 4 * MAX_BODY_BYTES && !exchange.received() && !exchange.socket.destroyed) {
      exchange.socket.write(`${chunk.length.toString(16)}\r\n`);
      exchange.socket.write(chunk);
      exchange.socket.write('\r\n');
      sent += chunk.length;
      await sleep(2);
    }
    const answer = await answerOf(exchange, 5_000);
    expect(answer.status).toBe(413);
    expect(sent).toBeLessThan(MAX_BODY_BYTES + 1024 * 1024);
    await exchange.closed;
  });

  it('answers a body nested deeper than the limit with 400 naming the depth, at the byte that passes it', async () => {
    const { webhook, logs } = await start();
    const depth = 100_000;
    const exchange = await rawRequest(webhook.port, postHead(reviewCarrying(`${'['.repeat(depth)}${']'.repeat(depth)}`).length));
    // Only the start of the body: the answer must not wait for the rest.
    exchange.socket.write(reviewCarrying(`${'['.repeat(depth)}${']'.repeat(depth)}`).slice(0, 1_000));
    const answer = await answerOf(exchange, 5_000);
    expect(answer.status).toBe(400);
    expect((JSON.parse(answer.body) as { error: string }).error).toMatch(/^malformed request body: JSON nested deeper than 64 levels \(at byte \d+\)$/);
    await exchange.closed;
    expect(logs).toContainEqual(expect.objectContaining({ level: 40, reason: 'too-deep', msg: expect.stringContaining('nested deeper than 64 levels') }));
  });

  it('answers a body with more objects and arrays, or more members, than any pod with 400 naming the limit', async () => {
    const { webhook } = await start();
    const manyArrays = await httpsRequest(webhook.port, { path: '/mutate', body: reviewCarrying(`[${Array.from({ length: JSON_SHAPE_LIMITS.maxContainers }, () => '[]').join(',')}]`), ca });
    expect(manyArrays.status).toBe(400);
    expect((manyArrays.json as { error: string }).error).toMatch(/^malformed request body: more than 50000 JSON objects and arrays/);
    const manyKeys = await httpsRequest(webhook.port, {
      path: '/mutate',
      body: reviewCarrying(`{${Array.from({ length: JSON_SHAPE_LIMITS.maxMembers }, (_, i) => `"k${i}":0`).join(',')}}`),
      ca,
    });
    expect(manyKeys.status).toBe(400);
    expect((manyKeys.json as { error: string }).error).toMatch(/^malformed request body: more than 50000 JSON object members/);
    // The same shapes a little under the limits are a review like any other.
    const under = await httpsRequest(webhook.port, { path: '/mutate', body: reviewCarrying(`[${Array.from({ length: 24_000 }, (_, i) => `{"k${i}":[]}`).join(',')}]`), ca });
    expect(under.status).toBe(200);
    expect(await metric(webhook, /^zkleader_webhook_admissions_total\{outcome="error",reason="too-many-containers"\} (\d+)$/m)).toBe(1);
    expect(await metric(webhook, /^zkleader_webhook_admissions_total\{outcome="error",reason="too-many-members"\} (\d+)$/m)).toBe(1);
  });

  it('logs a flood of refused bodies as one line and a count, not a line each', async () => {
    const { webhook, logs } = await start();
    const deep = reviewCarrying(`${'['.repeat(100)}${']'.repeat(100)}`);
    for (let i = 0; i < 30; i++) expect((await httpsRequest(webhook.port, { path: '/mutate', body: deep, ca })).status).toBe(400);
    expect(logs.filter((l) => l.reason === 'too-deep')).toHaveLength(1);
    await webhook.close();
    // Closing logs the count it held back.
    expect(logs.filter((l) => l.reason === 'too-deep').at(-1)).toMatchObject({ level: 40, repeated: 29 });
  });
});

describe('reviews in flight', () => {
  it(`with every place held by slow senders (${MAX_LARGE_REVIEWS_IN_FLIGHT} large, then ${MAX_REVIEWS_IN_FLIGHT} in all), a new review takes the place of the oldest body still arriving`, async () => {
    const { webhook } = await start();
    const length = 1024 * 1024;
    const inFlight = (size: string) => metric(webhook, new RegExp(`^zkleader_webhook_reviews_in_flight\\{size="${size}"\\} (\\d+)$`, 'm'));
    // Slow uploads: headers and the first bytes of a 1 MiB body, the rest never sent.
    const slowLarge = [];
    for (let i = 0; i < MAX_LARGE_REVIEWS_IN_FLIGHT; i++) slowLarge.push(await rawRequest(webhook.port, postHead(length), '{"apiVersion":'));
    await until(async () => (await inFlight('large')) === MAX_LARGE_REVIEWS_IN_FLIGHT, 2_000, 'the slow large uploads in flight');
    // A real large review gets the place of the oldest slow one, which is closed.
    const large = await httpsRequest(webhook.port, { path: '/mutate', body: review('large', { ...(pod as object), padding: 'x'.repeat(length) }), ca });
    expect(large.status).toBe(200);
    await slowLarge[0]?.closed;
    expect(slowLarge.slice(1).every((x) => !x.socket.destroyed)).toBe(true);
    for (const x of slowLarge) x.socket.destroy();
    await until(async () => (await inFlight('large')) === 0, 5_000, 'the large places freed');
    // 64 slow small uploads: a real review is still answered.
    const slowSmall = await Promise.all(Array.from({ length: MAX_REVIEWS_IN_FLIGHT }, () => rawRequest(webhook.port, postHead(1_000), '{')));
    await until(async () => (await inFlight('small')) === MAX_REVIEWS_IN_FLIGHT, 2_000, 'the slow small uploads in flight');
    const answered = await httpsRequest(webhook.port, { path: '/mutate', body: review('while-full'), ca });
    expect(answered.status).toBe(200);
    expect(answered.json).toMatchObject({ response: { uid: 'while-full', allowed: true } });
    // One slow sender was closed to make room.
    await Promise.race(slowSmall.map((x) => x.closed));
    expect(await metric(webhook, /^zkleader_webhook_admissions_total\{outcome="error",reason="evicted-slow-body"\} (\d+)$/m)).toBeGreaterThanOrEqual(2);
  });

  it(`answers 408 to a small body that has not arrived ${SMALL_BODY_DEADLINE_MS} ms after its headers, and frees its place`, async () => {
    const { webhook } = await start();
    const slow = await rawRequest(webhook.port, postHead(1_000), '{');
    const started = Date.now();
    const answer = await answerOf(slow, SMALL_BODY_DEADLINE_MS + 5_000);
    expect(answer.status).toBe(408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(SMALL_BODY_DEADLINE_MS - 100);
    expect((JSON.parse(answer.body) as { error: string }).error).toMatch(/^the request body did not arrive in time/);
    await slow.closed;
    await until(async () => (await metric(webhook, /^zkleader_webhook_reviews_in_flight\{size="small"\} (\d+)$/m)) === 0, 2_000, 'the place freed');
  });
});

describe('connections', () => {
  it(`closes a connection that sends no TLS ClientHello after the handshake timeout (${TLS_HANDSHAKE_TIMEOUT_MS} ms)`, async () => {
    const { webhook } = await start();
    const socket = tcpConnect({ host: '127.0.0.1', port: webhook.port });
    sockets.push(socket);
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    const opened = Date.now();
    // Generous: closed within 15 s of the timeout (Node's default would hold it 120 s).
    const closed = await Promise.race([once(socket, 'close').then(() => true), sleep(TLS_HANDSHAKE_TIMEOUT_MS + 15_000).then(() => false)]);
    expect(closed).toBe(true);
    const after = Date.now() - opened;
    expect(after).toBeGreaterThanOrEqual(TLS_HANDSHAKE_TIMEOUT_MS - 500);
    expect(await metric(webhook, /^zkleader_webhook_connections_closed_total\{reason="tls-handshake-timeout"\} (\d+)$/m)).toBe(1);
  }, 30_000);

  it(`with ${MAX_CONNECTIONS} connections held open without a ClientHello, still answers an admission: the oldest is closed to make room`, async () => {
    const { webhook, logs } = await start();
    const silent: Socket[] = [];
    const closedAt = new Map<Socket, number>();
    for (let i = 0; i < MAX_CONNECTIONS + 20; i++) {
      const socket = tcpConnect({ host: '127.0.0.1', port: webhook.port });
      socket.on('error', () => undefined);
      socket.on('close', () => closedAt.set(socket, Date.now()));
      sockets.push(socket);
      silent.push(socket);
      await once(socket, 'connect');
    }
    // The 20 beyond the cap pushed out the 20 oldest.
    await until(() => closedAt.size === 20, 5_000, 'the oldest 20 closed');
    expect(silent.slice(0, 20).every((s) => closedAt.has(s))).toBe(true);
    expect(silent.slice(20).some((s) => closedAt.has(s))).toBe(false);

    const answer = await httpsRequest(webhook.port, { path: '/mutate', body: review('despite-the-flood'), ca });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ response: { uid: 'despite-the-flood', allowed: true, patchType: 'JSONPatch' } });
    expect(closedAt.has(silent[20] as Socket)).toBe(true);
    const count = await new Promise<number>((resolve, reject) => webhook.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    expect(count).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(await metric(webhook, /^zkleader_webhook_open_connections\{state="tls-handshake"\} (\d+)$/m)).toBe(MAX_CONNECTIONS - 1);
    expect(await metric(webhook, /^zkleader_webhook_connections_closed_total\{reason="evicted-in-handshake"\} (\d+)$/m)).toBeGreaterThanOrEqual(21);
    expect(logs.filter((l) => l.reason === 'evicted-in-handshake')).toHaveLength(1);
  }, 30_000);

  it('with the cap reached by idle TLS connections, closes the one idle the longest to let a new one in', async () => {
    const { webhook } = await start();
    const idle: TLSSocket[] = [];
    const closed = new Set<TLSSocket>();
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const socket = tlsConnect({ host: '127.0.0.1', port: webhook.port, ca });
      socket.on('error', () => undefined);
      socket.on('close', () => closed.add(socket));
      sockets.push(socket);
      idle.push(socket);
      await once(socket, 'secureConnect');
    }
    // The first one has served a request since: it is no longer the one idle the longest.
    const first = idle[0] as TLSSocket;
    first.write('GET /healthz HTTP/1.1\r\nHost: webhook\r\n\r\n');
    await once(first, 'data');
    const answer = await httpsRequest(webhook.port, { path: '/mutate', body: review('past-idle-ones'), ca });
    expect(answer.status).toBe(200);
    await until(() => closed.size > 0, 5_000, 'an idle connection closed');
    expect(closed.has(idle[1] as TLSSocket)).toBe(true);
    expect(closed.has(first)).toBe(false);
    expect(await metric(webhook, /^zkleader_webhook_connections_closed_total\{reason="evicted-idle"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
