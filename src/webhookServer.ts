import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SecureContextOptions } from 'node:tls';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import { admit } from './admission.js';
import {
  BodyAbortedError,
  BodyTimeoutError,
  BodyTooLargeError,
  declaredLength,
  JSON_SHAPE_LIMITS,
  KEEP_ALIVE_TIMEOUT_MS,
  LARGE_BODY_DEADLINE_MS,
  LargeReviewTurns,
  MAX_BODY_BYTES,
  MAX_CONNECTIONS,
  MAX_LARGE_REVIEWS_IN_FLIGHT,
  MAX_REVIEWS_IN_FLIGHT,
  readBody,
  RejectionLog,
  RETRY_AFTER_SECONDS,
  ReviewSlots,
  SMALL_BODY_DEADLINE_MS,
  SMALL_REVIEW_BYTES,
  TLS_HANDSHAKE_TIMEOUT_MS,
} from './admissionLimits.js';
import { MalformedReviewError, readAdmissionReview, reviewResponse } from './admissionReview.js';
import { CertificateReloader, type CertificateStatus } from './certificateReloader.js';
import type { InjectorConfig } from './config.js';
import { ConnectionGuard, type ConnectionDrop } from './connectionGuard.js';
import { describeJsonShapeViolation, JsonShapeScanner, type JsonShapeLimit, type JsonShapeViolation } from './jsonShape.js';
import { formatListenAddress, listenOn } from '../cli/listen.js';
import type { HostPort as ListenAddress } from '../cli/valueSyntax.js';
import { WebhookMetrics } from './webhookMetrics.js';

/**
 * The webhook's TLS: 1.2 and 1.3 only, and on TLS 1.2 only ECDHE key exchange (forward
 * secrecy) with AEAD ciphers, ECDSA and RSA certificates alike; TLS 1.3's suites are all
 * AEAD. No RSA key exchange, no CBC, no SHA-1 MACs. Go's crypto/tls, the API server's
 * client, offers these first. Passed on every setSecureContext too: it otherwise resets them.
 */
export const TLS_POLICY: Pick<SecureContextOptions, 'minVersion' | 'ciphers' | 'honorCipherOrder'> = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
};

class JsonShapeError extends Error {
  constructor(readonly violation: JsonShapeViolation) {
    super(describeJsonShapeViolation(violation));
  }
}

const SHAPE_REASONS: Record<JsonShapeLimit, string> = { depth: 'too-deep', containers: 'too-many-containers', members: 'too-many-members' };

export interface WebhookAppOptions {
  config: InjectorConfig;
  logger: Logger;
  metrics: WebhookMetrics;
  /** /readyz answers 200 only while this says ready (a valid serving certificate is loaded), else 503 with the reason. */
  ready: () => CertificateStatus;
  /** True once the webhook is stopping: /readyz answers 503, everything else is still served. */
  draining?: () => boolean;
  /** The bound on reviews in flight (src/admissionLimits.ts). */
  slots?: ReviewSlots;
  /** Where refused requests are logged, at a bounded rate. */
  rejections?: RejectionLog;
}

const DRAINING = 'draining: the webhook is stopping; it still serves POST /mutate until the drain period ends';

interface HttpError {
  status?: number;
  message: string;
}

function elapsedSeconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function podName(object: unknown): string | undefined {
  if (typeof object !== 'object' || object === null) return undefined;
  const metadata = (object as { metadata?: { name?: unknown; generateName?: unknown } }).metadata;
  const name = metadata?.name ?? metadata?.generateName;
  return typeof name === 'string' ? name : undefined;
}

/** The HTTP layer only: decode the review, call admit(), encode the answer, count it. */
export function createWebhookApp({
  config,
  logger,
  metrics,
  ready,
  draining = () => false,
  slots = new ReviewSlots(),
  rejections = new RejectionLog(logger),
}: WebhookAppOptions): express.Express {
  const largeTurns = new LargeReviewTurns();
  /** Reviews whose body is still arriving, oldest first (a Map keeps insertion order). */
  const receiving = new Map<Request, { large: boolean; evict: () => void }>();
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // While draining, every answer closes its connection: a client's next request opens a new
  // one, which the Service sends to a pod that is not stopping once the endpoint removal is through.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    if (draining()) res.set('Connection', 'close');
    next();
  });

  /**
   * Refuses a request with a JSON error, counted and logged at the rejection log's rate.
   * `close`: the body was not read (in full); the connection closes after the answer, so
   * nothing more of it is read.
   */
  const refuse = (req: Request, res: Response, status: number, reason: string, message: string, opts: { close?: boolean; headers?: Record<string, string> } = {}) => {
    const start = res.locals.start as bigint | undefined;
    if (start !== undefined) metrics.admission('error', elapsedSeconds(start), reason);
    rejections.warn(reason, { status, path: req.path, remoteAddress: req.socket.remoteAddress }, message);
    if (res.headersSent) return;
    if (opts.close) res.set('Connection', 'close');
    if (opts.headers) res.set(opts.headers);
    res.status(status).json({ error: message });
  };

  const startTimer = (_req: Request, res: Response, next: NextFunction) => {
    res.locals.start = process.hrtime.bigint();
    next();
  };

  /**
   * Takes a place among the reviews in flight when the headers arrive, before any byte of
   * the body is read: beyond the bound, 503 at once, and the body is never read.
   */
  const takeSlot = (req: Request, res: Response, next: NextFunction) => {
    const length = declaredLength(req);
    const large = length === undefined || length > SMALL_REVIEW_BYTES;
    let release = slots.tryAcquire(large);
    if (!release) {
      // Every place is taken: the oldest review whose body is still arriving (a slow sender,
      // since the API server sends at once) gives its place up, so slow senders cannot lock
      // the API server out. A large newcomer can only take a large review's place.
      const needLarge = large && slots.largeInFlight >= slots.maxLarge;
      const victim = [...receiving.values()].find((r) => !needLarge || r.large);
      if (victim) {
        victim.evict();
        release = slots.tryAcquire(large);
      }
    }
    if (!release) {
      const which = large ? `${slots.maxLarge} with a body over ${SMALL_REVIEW_BYTES / 1024} KiB` : `${slots.max}`;
      refuse(req, res, 503, 'overloaded', `too many admission reviews in flight (at most ${which}); retry in ${RETRY_AFTER_SECONDS} s`, {
        close: true,
        headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      });
      return;
    }
    // 'close' comes after the answer is sent, and when the client goes away first.
    res.once('close', release);
    res.once('close', () => receiving.delete(req));
    const slot = release;
    receiving.set(req, {
      large,
      evict: () => {
        receiving.delete(req);
        slot();
        metrics.admission('error', elapsedSeconds(res.locals.start as bigint), 'evicted-slow-body');
        rejections.warn('evicted-slow-body', { remote: req.socket.remoteAddress }, 'a review whose body was still arriving gave its place to a new one (all places taken)');
        req.socket.destroy();
      },
    });
    next();
  };

  /**
   * Reads the body (at most MAX_BODY_BYTES), checks its shape (src/jsonShape.ts), and only
   * then parses it: a hostile body is refused before it is built in memory.
   */
  const readReview = async (req: Request, res: Response, next: NextFunction) => {
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      // The API server sends reviews uncompressed; a compressed body could inflate past every limit.
      refuse(req, res, 415, 'unsupported-encoding', `unsupported Content-Encoding ${JSON.stringify(encoding)}: send the review uncompressed`, { close: true });
      return;
    }
    let body: Buffer;
    const scanner = new JsonShapeScanner(JSON_SHAPE_LIMITS);
    try {
      const large = receiving.get(req)?.large ?? true;
      body = await readBody(
        req,
        MAX_BODY_BYTES,
        (chunk) => {
          const violation = scanner.push(chunk);
          return violation && new JsonShapeError(violation);
        },
        large ? LARGE_BODY_DEADLINE_MS : SMALL_BODY_DEADLINE_MS,
      );
    } catch (err) {
      receiving.delete(req);
      if (err instanceof BodyTimeoutError) {
        refuse(req, res, 408, 'slow-body', `the request body did not arrive in time (${err.message.replace('the body did not arrive within ', '')}); the API server sends it at once`, { close: true });
        return;
      }
      if (err instanceof BodyTooLargeError) {
        refuse(req, res, 413, 'too-large', `request body larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB (${MAX_BODY_BYTES} bytes)`, { close: true });
        return;
      }
      if (err instanceof JsonShapeError) {
        // Refused at the byte that passed the limit: the rest of the body is never read.
        refuse(req, res, 400, SHAPE_REASONS[err.violation.limit], `malformed request body: ${describeJsonShapeViolation(err.violation)}`, { close: true });
        return;
      }
      if (err instanceof BodyAbortedError) return;
      throw err;
    }
    receiving.delete(req);
    const endTurn = body.length > SMALL_REVIEW_BYTES ? await largeTurns.take() : undefined;
    try {
      // The client may have gone while this review waited for its turn.
      if (res.writableEnded || req.socket.destroyed) return;
      try {
        // An empty body reads as {} (as express.json did): the review check names what is missing.
        const parsed: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
        if (typeof parsed !== 'object' || parsed === null) throw new SyntaxError(`expected a JSON object, got ${parsed === null ? 'null' : typeof parsed}`);
        req.body = parsed;
      } catch (err) {
        refuse(req, res, 400, 'malformed', `malformed request body: ${(err as Error).message}`);
        return;
      }
      // The rest of the chain (admit, answer) is synchronous: it runs within this turn.
      next();
    } finally {
      endTurn?.();
    }
  };

  app.post('/mutate', startTimer, takeSlot, readReview, (req: Request, res: Response) => {
    const start = res.locals.start as bigint;
    let request;
    try {
      request = readAdmissionReview(req.body);
    } catch (err) {
      if (!(err instanceof MalformedReviewError)) throw err;
      refuse(req, res, 400, 'malformed', `malformed AdmissionReview: ${err.message}`);
      return;
    }
    const { uid } = request;
    let admission;
    try {
      admission = admit(request, config);
    } catch (err) {
      metrics.admission('error', elapsedSeconds(start), 'internal');
      logger.error({ uid, err }, 'admission failed');
      res.status(500).json({ error: `internal error while admitting request ${uid}` });
      return;
    }
    res.json(reviewResponse(admission.response));
    const seconds = elapsedSeconds(start);
    metrics.admission(admission.outcome, seconds, admission.outcome === 'skipped' ? admission.reason : '');
    const fields = {
      uid,
      namespace: request.namespace,
      pod: request.name ?? podName(request.object),
      outcome: admission.outcome,
      reason: admission.reason,
      ms: Math.round(seconds * 1e6) / 1e3,
    };
    // Most pods of a cluster pass the Ignore entry untouched: log those at debug only.
    if (admission.outcome === 'skipped') logger.debug(fields, 'admission');
    else logger.info(fields, 'admission');
  });

  app.all('/mutate', (req: Request, res: Response) => {
    res.status(405).set('Allow', 'POST').json({ error: `method ${req.method} not allowed on /mutate; expected POST` });
  });
  app.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req: Request, res: Response) => {
    if (draining()) res.status(503).json({ status: 'draining', reason: DRAINING });
    else {
      const status = ready();
      if (status.ready) res.json({ status: 'ready' });
      else res.status(503).json({ status: 'not ready', reason: status.reason ?? 'not ready' });
    }
  });
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}; expected POST /mutate` });
  });
  // Anything thrown on the way: a client error express found (a 4xx status), else a bug.
  app.use((err: HttpError, req: Request, res: Response, _next: NextFunction) => {
    const status = err.status !== undefined && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) {
      const start = res.locals.start as bigint | undefined;
      if (start !== undefined) metrics.admission('error', elapsedSeconds(start), 'internal');
      logger.error({ err, path: req.path }, 'request failed');
      if (!res.headersSent) res.status(500).json({ error: 'internal error' });
      return;
    }
    refuse(req, res, status, 'malformed', `malformed request: ${err.message}`);
  });
  return app;
}

export interface WebhookServerOptions {
  listen: ListenAddress;
  /** Undefined: no metrics server. */
  metricsListen?: ListenAddress;
  tlsCertFile: string;
  tlsKeyFile: string;
  config: InjectorConfig;
  logger: Logger;
  metrics?: WebhookMetrics;
  certificatePollMs?: number;
  /** A request not received in full within this time gets 408 (a stalled client must not hold it forever). */
  requestTimeoutMs?: number;
}

export interface RunningWebhook {
  /** The HTTPS server of POST /mutate (tests read its settings). */
  readonly server: HttpsServer;
  readonly port: number;
  readonly metricsPort: number | undefined;
  readonly metrics: WebhookMetrics;
  readonly reloader: CertificateReloader;
  /** True from the first drain() on. */
  readonly draining: boolean;
  /**
   * The graceful stop: /readyz answers 503 at once (on both servers) while everything else is
   * still served for drainMs, so the endpoint removal reaches the API servers and kube-proxy
   * before the port closes; then close(). An abort of `cut` ends the wait at once.
   */
  drain(drainMs: number, cut?: AbortSignal): Promise<void>;
  /** Stops accepting, lets requests in flight finish (at most graceMs), then closes every connection. */
  close(graceMs?: number): Promise<void>;
}

const CONNECTION_DROPS: Record<ConnectionDrop, string> = {
  'evicted-in-handshake': `connection limit (${MAX_CONNECTIONS}) reached: closed the oldest connection still in its TLS handshake to make room`,
  'evicted-idle': `connection limit (${MAX_CONNECTIONS}) reached: closed the connection idle the longest to make room`,
  'refused-all-busy': `connection limit (${MAX_CONNECTIONS}) reached with every connection serving a request: refused a new connection`,
};

/** The metrics of the webhook's limits, on its registry (the latest server's, if one registry serves several). */
function limitMetrics(metrics: WebhookMetrics, slots: ReviewSlots, guard: ConnectionGuard): Counter<'reason'> {
  const { registry } = metrics;
  for (const name of ['zkleader_webhook_reviews_in_flight', 'zkleader_webhook_open_connections']) registry.removeSingleMetric(name);
  new Gauge({
    name: 'zkleader_webhook_reviews_in_flight',
    help: `Admission reviews between their headers and their answer, by size (large: over ${SMALL_REVIEW_BYTES / 1024} KiB); at most ${MAX_REVIEWS_IN_FLIGHT}, ${MAX_LARGE_REVIEWS_IN_FLIGHT} large`,
    labelNames: ['size'] as const,
    registers: [registry],
    collect() {
      this.set({ size: 'small' }, slots.inFlight - slots.largeInFlight);
      this.set({ size: 'large' }, slots.largeInFlight);
    },
  });
  new Gauge({
    name: 'zkleader_webhook_open_connections',
    help: `Open connections of the HTTPS server, by state; at most ${MAX_CONNECTIONS}`,
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.set({ state: 'tls-handshake' }, guard.inHandshake);
      this.set({ state: 'established' }, guard.size - guard.inHandshake);
    },
  });
  const closedName = 'zkleader_webhook_connections_closed_total';
  const existing = registry.getSingleMetric(closedName);
  if (existing) return existing as Counter<'reason'>;
  return new Counter({
    name: closedName,
    help: 'Connections the webhook closed to protect itself, by reason: evicted-in-handshake, evicted-idle, refused-all-busy, tls-handshake-timeout',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
}

async function closeServer(server: HttpServer | HttpsServer, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(force);
}

/**
 * The webhook over HTTPS. It starts even before the certificate files exist (the
 * certificates job may still be running): handshakes fail and /readyz is 503 until
 * a valid pair is loaded; later pairs replace it without a restart.
 */
export async function startWebhookServer(opts: WebhookServerOptions): Promise<RunningWebhook> {
  const { logger } = opts;
  const metrics = opts.metrics ?? new WebhookMetrics();
  const rejections = new RejectionLog(logger);
  const slots = new ReviewSlots();
  const guard = new ConnectionGuard(MAX_CONNECTIONS, (why, remoteAddress) => {
    connectionsClosed.inc({ reason: why });
    rejections.warn(why, { remoteAddress, maxConnections: MAX_CONNECTIONS }, CONNECTION_DROPS[why]);
  });
  const connectionsClosed = limitMetrics(metrics, slots, guard);
  // The one stopping state of the webhook: both servers' /readyz read it.
  let draining = false;
  const app = createWebhookApp({ config: opts.config, logger, metrics, ready: () => reloader.status(), draining: () => draining, slots, rejections });
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  const server = createHttpsServer(
    {
      ...TLS_POLICY,
      handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
      // Node checks the request timeout on this interval (30 s by default).
      connectionsCheckingInterval: Math.min(1_000, requestTimeout),
    },
    app,
  );
  const reloader = new CertificateReloader({
    certFile: opts.tlsCertFile,
    keyFile: opts.tlsKeyFile,
    logger,
    apply: (pair) => server.setSecureContext({ ...TLS_POLICY, ...pair }),
    onResult: (result) => metrics.certificateReload(result),
    ...(opts.certificatePollMs !== undefined && { pollIntervalMs: opts.certificatePollMs }),
  });
  // Far above the API server's 10 s webhook timeout by default.
  server.requestTimeout = requestTimeout;
  // Runs only while a request's headers arrive, not while a kept-alive connection is idle.
  server.headersTimeout = Math.min(10_000, requestTimeout);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  guard.attach(server);
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
      connectionsClosed.inc({ reason: 'tls-handshake-timeout' });
      rejections.warn('tls-handshake-timeout', { remoteAddress: socket.remoteAddress, timeoutMs: TLS_HANDSHAKE_TIMEOUT_MS }, 'closed a connection that did not finish its TLS handshake in time');
    } else {
      logger.debug({ err: err.message }, 'TLS handshake failed');
    }
  });
  reloader.start();

  let metricsServer: HttpServer | undefined;
  try {
    const address = await listenOn(server, opts.listen, logger);
    let metricsAddress: AddressInfo | undefined;
    if (opts.metricsListen) {
      metricsServer = createMetricsServer(metrics, () => reloader.status(), () => draining);
      metricsAddress = await listenOn(metricsServer, opts.metricsListen, logger);
    }
    logger.info(
      {
        listen: formatListenAddress(address),
        port: address.port,
        metricsListen: metricsAddress && formatListenAddress(metricsAddress),
        metricsPort: metricsAddress?.port,
        ready: reloader.loaded,
        sidecarImage: opts.config.image,
      },
      'webhook listening',
    );
    const close = async (graceMs = 5_000) => {
      draining = true;
      reloader.stop();
      const closing = Promise.all([closeServer(server, graceMs), metricsServer ? closeServer(metricsServer, graceMs) : undefined]);
      // Not yet HTTP connections, so closeIdleConnections() does not see them; none has a request to finish.
      guard.closeHandshaking();
      await closing;
      rejections.close();
    };
    return {
      server,
      port: address.port,
      metricsPort: metricsAddress?.port,
      metrics,
      reloader,
      get draining() {
        return draining;
      },
      drain: async (drainMs, cut) => {
        draining = true;
        if (drainMs > 0 && !cut?.aborted) {
          await sleep(drainMs, undefined, { signal: cut }).catch((err: unknown) => {
            if ((err as Error).name !== 'AbortError') throw err;
          });
        }
        await close();
      },
      close,
    };
  } catch (err) {
    reloader.stop();
    server.close();
    metricsServer?.close();
    throw err;
  }
}

/** Plain HTTP on its own port: Prometheus scrapes it without the webhook's certificate. */
function createMetricsServer(metrics: WebhookMetrics, ready: () => CertificateStatus, draining: () => boolean): HttpServer {
  return createHttpServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (req.method === 'GET' && path === '/readyz') {
      const status = ready();
      const [ok, text] = draining() ? [false, `${DRAINING}\n`] : status.ready ? [true, 'ok\n'] : [false, `${status.reason ?? 'not ready'}\n`];
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(text);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('expected GET /metrics, /healthz or /readyz\n');
    }
  });
}
