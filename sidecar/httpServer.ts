import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn, type ListenLogger } from '../cli/listen.js';
import type { ConfigSummary } from './configFiles.js';
import type { LeaderDocument } from './leaderFile.js';

// Not `import ... from 'node:http'`: building that module's ESM namespace reads every export,
// the lazy http.WebSocket and friends too, which load undici: about 14 MiB of RSS the sidecar
// never uses (bench/sidecarMemory.ts). getBuiltinModule() hands over the module as it is.
const { createServer } = process.getBuiltinModule('node:http');

export interface Readiness {
  /** True once the first election outcome is on disk; stays true after. */
  readonly ready: boolean;
  /** Current problems, one line each (ZooKeeper unreachable, API forbidden, ...). */
  readonly problems: readonly string[];
  /** What readiness waits for, when more than the election outcome (configs). */
  readonly awaits?: string;
}

/** The startup gate (`/startz`): whether the app containers may start. */
export interface Startup {
  /** Stays true once true. */
  readonly started: boolean;
  /** One line: why, or why not yet. */
  readonly reason: string;
}

export interface SidecarHttpOptions {
  /** `::` (the default `[::]`): every address of both families, 0.0.0.0 where IPv6 is unavailable. */
  readonly host: string;
  readonly port: number;
  /** Told at info when `[::]` falls back to 0.0.0.0. */
  readonly logger?: ListenLogger;
  /** The document last written to disk. */
  readonly document: () => LeaderDocument | null;
  readonly readiness: () => Readiness;
  /** The metrics page: prom-client's Registry has this shape, and so has prometheusText.ts's. */
  readonly registry: { readonly contentType: string; metrics(): Promise<string> };
  /** The configs on disk (`GET /config`, config.json); absent without --configs. */
  readonly configs?: () => Readonly<Record<string, ConfigSummary>>;
  /** `/startz` with --start leader; absent: `/startz` answers as `/readyz` does (the app starts with readiness). */
  readonly startup?: () => Startup;
}

/**
 * The sidecar's HTTP endpoints: `/` (leader-elector compatible `{"name": ...}`), `/leader`,
 * `/healthz`, `/readyz`, `/metrics`. Read-only views of the outputs; nothing here touches
 * the election.
 */
export class SidecarHttpServer {
  private constructor(
    private readonly server: Server,
    readonly address: AddressInfo,
  ) {}

  static async start(options: SidecarHttpOptions): Promise<SidecarHttpServer> {
    const server = createServer((req, res) => {
      void handle(options, req, res).catch((err: unknown) => send(res, 500, 'text/plain', `internal error: ${(err as Error).message}\n`));
    });
    server.keepAliveTimeout = 5000;
    const address = await listenOn(server, { host: options.host, port: options.port }, options.logger);
    return new SidecarHttpServer(server, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

async function handle(options: SidecarHttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'text/plain', `method ${req.method} not allowed; use GET\n`);
  }
  const path = new URL(req.url ?? '/', 'http://sidecar').pathname;
  switch (path) {
    case '/': {
      const doc = options.document();
      return send(res, 200, 'application/json', `${JSON.stringify({ name: doc?.leader?.pod ?? '' })}\n`);
    }
    case '/leader': {
      const doc = options.document();
      if (!doc) return send(res, 503, 'application/json', `${JSON.stringify({ error: 'no election outcome yet' })}\n`);
      return send(res, 200, 'application/json', `${JSON.stringify(doc)}\n`);
    }
    case '/healthz':
      return send(res, 200, 'text/plain', 'ok\n');
    case '/readyz': {
      const { ready, problems, awaits = 'the election outcome' } = options.readiness();
      const lines = ready ? [`ready: ${awaits} on disk`, ...problems.map((p) => `warning: ${p}`)] : [`not ready: waiting for ${awaits} on disk`, ...problems];
      return send(res, ready ? 200 : 503, 'text/plain', `${lines.join('\n')}\n`);
    }
    case '/startz': {
      const startup = options.startup?.() ?? startupOfReadiness(options.readiness());
      return send(res, startup.started ? 200 : 503, 'text/plain', `${startup.reason}\n`);
    }
    case '/config': {
      if (!options.configs) return send(res, 404, 'application/json', `${JSON.stringify({ error: 'this sidecar follows no configs (--configs)' })}\n`);
      return send(res, 200, 'application/json', `${JSON.stringify(options.configs())}\n`);
    }
    case '/metrics':
      return send(res, 200, options.registry.contentType, await options.registry.metrics());
    default:
      return send(res, 404, 'text/plain', `no such endpoint ${path}; try /, /leader, /config, /healthz, /readyz, /startz, /metrics\n`);
  }
}

function startupOfReadiness({ ready, awaits = 'the election outcome' }: Readiness): Startup {
  return ready ? { started: true, reason: `started: ${awaits} on disk` } : { started: false, reason: `not started: waiting for ${awaits} on disk` };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
