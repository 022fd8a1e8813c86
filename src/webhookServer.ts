import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { admit } from './admission.js';
import { MalformedReviewError, readAdmissionReview, reviewResponse } from './admissionReview.js';
import { CertificateReloader } from './certificateReloader.js';
import type { InjectorConfig } from './config.js';
import { formatListenAddress, listenOn } from '../cli/listen.js';
import type { HostPort as ListenAddress } from '../cli/valueSyntax.js';
import { WebhookMetrics } from './webhookMetrics.js';

/** Above the API server's own request limit (3 MiB), so a real review is never cut off. */
export const BODY_LIMIT = '3mb';

export interface WebhookAppOptions {
  config: InjectorConfig;
  logger: Logger;
  metrics: WebhookMetrics;
  /** /readyz answers 200 only while this is true (a serving certificate is loaded). */
  ready: () => boolean;
  /** True once the webhook is stopping: /readyz answers 503, everything else is still served. */
  draining?: () => boolean;
}

const DRAINING = 'draining: the webhook is stopping; it still serves POST /mutate until the drain period ends';

interface BodyParserError {
  status?: number;
  type?: string;
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
export function createWebhookApp({ config, logger, metrics, ready, draining = () => false }: WebhookAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // While draining, every answer closes its connection: a client's next request opens a new
  // one, which the Service sends to a pod that is not stopping once the endpoint removal is through.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    if (draining()) res.set('Connection', 'close');
    next();
  });
  const parseJson = express.json({ limit: BODY_LIMIT, type: () => true });

  const startTimer = (_req: Request, res: Response, next: NextFunction) => {
    res.locals.start = process.hrtime.bigint();
    next();
  };

  app.post('/mutate', startTimer, parseJson, (req: Request, res: Response) => {
    const start = res.locals.start as bigint;
    let request;
    try {
      request = readAdmissionReview(req.body);
    } catch (err) {
      if (!(err instanceof MalformedReviewError)) throw err;
      metrics.admission('error', elapsedSeconds(start), 'malformed');
      logger.warn({ err: err.message }, 'malformed AdmissionReview');
      res.status(400).json({ error: `malformed AdmissionReview: ${err.message}` });
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
    else if (ready()) res.json({ status: 'ready' });
    else res.status(503).json({ status: 'not ready', reason: 'no serving certificate loaded' });
  });
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}; expected POST /mutate` });
  });
  // Express 5 passes body-parser failures here: too large, broken JSON, unsupported encoding.
  app.use((err: BodyParserError, req: Request, res: Response, _next: NextFunction) => {
    const status = err.status !== undefined && err.status >= 400 && err.status < 500 ? err.status : 500;
    const start = res.locals.start as bigint | undefined;
    if (start !== undefined) metrics.admission('error', elapsedSeconds(start), status === 413 ? 'too-large' : status === 500 ? 'internal' : 'malformed');
    const message =
      status === 413 ? `request body larger than ${BODY_LIMIT}` : status === 500 ? 'internal error' : `malformed request body: ${err.message}`;
    if (status === 500) logger.error({ err, path: req.path }, 'request failed');
    else logger.warn({ status, type: err.type, path: req.path }, message);
    if (res.headersSent) return;
    res.status(status).json({ error: message });
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
  // The one stopping state of the webhook: both servers' /readyz read it.
  let draining = false;
  const app = createWebhookApp({ config: opts.config, logger, metrics, ready: () => reloader.loaded, draining: () => draining });
  const requestTimeout = opts.requestTimeoutMs ?? 30_000;
  // Node checks the request timeout on this interval (30 s by default).
  const server = createHttpsServer({ connectionsCheckingInterval: Math.min(1_000, requestTimeout) }, app);
  const reloader = new CertificateReloader({
    certFile: opts.tlsCertFile,
    keyFile: opts.tlsKeyFile,
    logger,
    apply: (pair) => server.setSecureContext(pair),
    onResult: (result) => metrics.certificateReload(result),
    ...(opts.certificatePollMs !== undefined && { pollIntervalMs: opts.certificatePollMs }),
  });
  // Far above the API server's 10 s webhook timeout by default.
  server.requestTimeout = requestTimeout;
  server.headersTimeout = Math.min(10_000, requestTimeout);
  server.on('tlsClientError', (err) => logger.debug({ err: err.message }, 'TLS handshake failed'));
  reloader.start();

  let metricsServer: HttpServer | undefined;
  try {
    const address = await listenOn(server, opts.listen, logger);
    let metricsAddress: AddressInfo | undefined;
    if (opts.metricsListen) {
      metricsServer = createMetricsServer(metrics, () => reloader.loaded, () => draining);
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
      await Promise.all([closeServer(server, graceMs), metricsServer ? closeServer(metricsServer, graceMs) : undefined]);
    };
    return {
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
function createMetricsServer(metrics: WebhookMetrics, ready: () => boolean, draining: () => boolean): HttpServer {
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
      const [ok, text] = draining() ? [false, `${DRAINING}\n`] : ready() ? [true, 'ok\n'] : [false, 'no serving certificate loaded\n'];
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(text);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('expected GET /metrics, /healthz or /readyz\n');
    }
  });
}
