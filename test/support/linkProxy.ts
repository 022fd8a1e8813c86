import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * What a LinkProxy does to the bytes it carries; switchable at any time.
 *
 * - `pass`: forward.
 * - `drop`: reset every open connection now and every new one as soon as it is accepted
 *   (the upstream never sees it): the peers see a reset, at once (a close, where the
 *   proxy had already passed on a FIN).
 * - `freeze`: keep every connection open but hold all bytes, closes and resets in both
 *   directions — the peers see silence, as behind a network that black-holes packets.
 *   A connection accepted while frozen is connected upstream only once the link thaws,
 *   as if its SYN had been lost and retransmitted: a connection the upstream never hears
 *   of must not occupy it (ZooKeeper's election listener reads each new connection's
 *   first message on its one thread, with a timeout of syncLimit ticks).
 * - `{ delayMs }`: forward each chunk delayMs after it arrived, in order.
 *
 * Thawing (freeze → pass or delay) delivers what was held, in order, the way TCP
 * retransmits what a short partition lost; a connection whose initiator closed it
 * before it ever reached the upstream is forgotten. Pass from delay delivers what is
 * still in flight at once.
 */
export type LinkMode = 'pass' | 'drop' | 'freeze' | { readonly delayMs: number };

export function describeLinkMode(mode: LinkMode): string {
  return typeof mode === 'string' ? mode : `delay ${mode.delayMs} ms`;
}

function checkLinkMode(mode: LinkMode, where: string): void {
  if (mode === 'pass' || mode === 'drop' || mode === 'freeze') return;
  if (typeof mode === 'object' && mode !== null && Number.isFinite(mode.delayMs) && mode.delayMs >= 0) return;
  throw new Error(`${where}: expected a link mode 'pass', 'drop', 'freeze' or { delayMs: a finite number >= 0 }, got ${JSON.stringify(mode)}`);
}

export interface LinkProxyOptions {
  /** The port on 127.0.0.1 that connections are forwarded to. */
  readonly upstreamPort: number;
  /** The port on 127.0.0.1 to listen on; default 0 (the kernel picks one). */
  readonly listenPort?: number;
  /** Names the link in errors and logs, e.g. "server 1 → server 2 election". */
  readonly name?: string;
  /** Default 'pass'. */
  readonly mode?: LinkMode;
  /**
   * A connection that holds more than this many bytes (both directions, frozen or
   * delayed) is reset, so a long freeze cannot exhaust memory. Default 8 MiB.
   */
  readonly maxHeldBytes?: number;
  /**
   * How long to keep retrying an upstream that refuses a connection before resetting
   * the accepted one; default 0 (reset at once). The proxy's kernel accepts a connection
   * before the proxy knows whether the upstream listens, so a refusal — which a client
   * connecting directly sees at connect() and may retry — reaches the client as a reset
   * of a connection it thought established. ZooKeeper's learner retries a refused
   * connection to a leader that is still starting, but gives up on that leader after
   * such a reset; the ensemble sets this on its quorum links.
   */
  readonly connectRetryMs?: number;
}

/** Between attempts to connect to an upstream that refused. */
const connectRetryIntervalMs = 50;

/** Something travelling through the link: bytes, a FIN, or an RST. */
type InFlight =
  | { readonly kind: 'data'; readonly chunk: Buffer; releaseAt: number }
  | { readonly kind: 'end'; releaseAt: number }
  | { readonly kind: 'reset'; releaseAt: number };

/** When something arriving now may leave, under `mode`. */
function releaseTime(mode: LinkMode, now: number): number {
  if (mode === 'pass') return 0;
  if (mode === 'drop' || mode === 'freeze') return Number.POSITIVE_INFINITY;
  return now + mode.delayMs;
}

/** One direction of a connection: what it holds, and the socket it delivers to. */
class Direction {
  readonly queue: InFlight[] = [];
  bytes = 0;
  /** The destination's buffer is full; wait for 'drain'. */
  blocked = false;
  timer: NodeJS.Timeout | undefined;
  readonly source: () => Socket | undefined;
  readonly destination: () => Socket | undefined;

  // No parameter properties in this module: the harness is also loaded by Node's type
  // stripping (see zookeeperEnsemble.test.ts), which does not support them.
  constructor(source: () => Socket | undefined, destination: () => Socket | undefined) {
    this.source = source;
    this.destination = destination;
  }

  clear(): void {
    this.queue.length = 0;
    this.bytes = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** What a connection needs from the proxy that accepted it. */
interface LinkState {
  readonly upstreamPort: number;
  readonly maxHeldBytes: number;
  readonly connectRetryMs: number;
  mode(): LinkMode;
  overflowed(): void;
  finished(connection: ProxiedConnection): void;
}

/** An accepted connection and its upstream twin. */
class ProxiedConnection {
  upstream: Socket | undefined;
  readonly toUpstream: Direction;
  readonly toDownstream: Direction;
  readonly link: LinkState;
  readonly downstream: Socket;
  #finished = false;
  /** An upstream connection being attempted, or a retry waiting. */
  #connecting: Socket | undefined;
  #retry: NodeJS.Timeout | undefined;
  #firstAttemptAt: number | undefined;

  constructor(link: LinkState, downstream: Socket) {
    this.link = link;
    this.downstream = downstream;
    this.toUpstream = new Direction(
      () => this.downstream,
      () => this.upstream,
    );
    this.toDownstream = new Direction(
      () => this.upstream,
      () => this.downstream,
    );
    this.#wire(downstream, this.toUpstream, this.toDownstream);
  }

  get heldBytes(): number {
    return this.toUpstream.bytes + this.toDownstream.bytes;
  }

  /** Until connected, what the downstream sends waits in toUpstream. */
  connectUpstream(): void {
    if (this.upstream !== undefined || this.#connecting !== undefined || this.#retry !== undefined || this.#finished) return;
    this.#firstAttemptAt ??= performance.now();
    const socket = createConnection({ host: '127.0.0.1', port: this.link.upstreamPort, allowHalfOpen: true });
    this.#connecting = socket;
    const onConnect = (): void => {
      socket.off('error', onError);
      this.#connecting = undefined;
      if (this.#finished) {
        socket.destroy();
        return;
      }
      socket.setNoDelay(true);
      this.upstream = socket;
      this.#wire(socket, this.toDownstream, this.toUpstream);
      this.flush(this.toUpstream);
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.off('connect', onConnect);
      socket.destroy();
      this.#connecting = undefined;
      if (this.#finished) return;
      const retryForMs = this.link.connectRetryMs - (performance.now() - (this.#firstAttemptAt ?? 0));
      if (err.code === 'ECONNREFUSED' && retryForMs > 0) {
        this.#retry = setTimeout(
          () => {
            this.#retry = undefined;
            // A freeze or drop meanwhile: retime() or reset() decide what happens next.
            const mode = this.link.mode();
            if (mode !== 'freeze' && mode !== 'drop') this.connectUpstream();
          },
          Math.min(connectRetryIntervalMs, retryForMs),
        );
        return;
      }
      // Refused for good: the reset travels to the downstream through the link.
      this.#arrive(this.toDownstream, { kind: 'reset', releaseAt: 0 });
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
  }

  /** Accepted while frozen and never sent upstream: nothing is trying to reach the upstream. */
  get #neverReachedUpstream(): boolean {
    return this.upstream === undefined && this.#connecting === undefined && this.#retry === undefined;
  }

  /** `socket` is the source of `outgoing` and the destination of `incoming`. */
  #wire(socket: Socket, outgoing: Direction, incoming: Direction): void {
    socket.on('data', (chunk: Buffer) => this.#arrive(outgoing, { kind: 'data', chunk, releaseAt: 0 }));
    socket.on('end', () => {
      // A FIN before the connection ever reached the upstream (accepted while frozen): its
      // initiator gave up on a connection the upstream never heard of, so it never happens.
      // (A half-close that still waits for an answer would be lost; nothing here does that.)
      if (socket === this.downstream && this.#neverReachedUpstream) this.finish();
      else this.#arrive(outgoing, { kind: 'end', releaseAt: 0 });
    });
    socket.on('error', () => {
      // The peer reset (or refused) the connection: that travels through the link like
      // anything else, and nothing more can be delivered to this socket.
      if (this.#finished) return;
      incoming.clear();
      socket.destroy();
      this.#arrive(outgoing, { kind: 'reset', releaseAt: 0 });
    });
    socket.on('close', () => {
      // Never reached the upstream and now gone: the connection never existed for it.
      if (socket === this.downstream && this.upstream === undefined) this.finish();
      else if (this.downstream.destroyed && (this.upstream?.destroyed ?? true)) this.finish();
    });
  }

  #arrive(direction: Direction, item: InFlight): void {
    if (this.#finished) return;
    item.releaseAt = releaseTime(this.link.mode(), performance.now());
    direction.queue.push(item);
    if (item.kind === 'data') {
      direction.bytes += item.chunk.length;
      if (this.heldBytes > this.link.maxHeldBytes) {
        this.link.overflowed();
        this.reset();
        return;
      }
    }
    this.flush(direction);
  }

  /** Re-stamps what is held after a mode change, then delivers what is due. */
  retime(mode: LinkMode): void {
    const now = performance.now();
    for (const direction of [this.toUpstream, this.toDownstream]) {
      for (const item of direction.queue) {
        if (mode === 'pass') item.releaseAt = 0;
        else if (mode === 'freeze') item.releaseAt = Number.POSITIVE_INFINITY;
        // Delay: what was frozen leaves delayMs from now; what was already delayed keeps its time.
        else if (typeof mode === 'object' && item.releaseAt === Number.POSITIVE_INFINITY) item.releaseAt = now + mode.delayMs;
      }
    }
    if (mode !== 'freeze') this.connectUpstream();
    this.flush(this.toUpstream);
    this.flush(this.toDownstream);
  }

  flush(direction: Direction): void {
    clearTimeout(direction.timer);
    direction.timer = undefined;
    while (!this.#finished && !direction.blocked && direction.queue.length > 0) {
      const destination = direction.destination();
      // Not connected upstream yet (accepted while frozen): it waits in the queue.
      if (destination === undefined) return;
      const head = direction.queue[0] as InFlight;
      const now = performance.now();
      if (head.releaseAt > now) {
        if (Number.isFinite(head.releaseAt)) {
          direction.timer = setTimeout(() => this.flush(direction), Math.max(1, Math.ceil(head.releaseAt - now)));
        }
        return;
      }
      direction.queue.shift();
      if (head.kind === 'reset') {
        this.reset();
        return;
      }
      if (destination.destroyed) {
        direction.clear();
        return;
      }
      if (head.kind === 'end') {
        destination.end();
        continue;
      }
      direction.bytes -= head.chunk.length;
      if (!destination.write(head.chunk)) {
        // Backpressure: stop reading the source until the destination drains.
        direction.blocked = true;
        direction.source()?.pause();
        destination.once('drain', () => {
          direction.blocked = false;
          direction.source()?.resume();
          this.flush(direction);
        });
      }
    }
  }

  /** Resets both sockets now (RST, not FIN) and forgets everything held. */
  reset(): void {
    for (const socket of [this.downstream, this.upstream]) {
      if (socket === undefined || socket.destroyed) continue;
      // Node cannot reset a socket whose FIN it is sending: it emits an error and leaks
      // the handle (and the process then never exits). That peer has our FIN already.
      if (socket.writableEnded) socket.destroy();
      else socket.resetAndDestroy();
    }
    this.finish();
  }

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#connecting?.destroy();
    this.toUpstream.clear();
    this.toDownstream.clear();
    this.downstream.destroy();
    this.upstream?.destroy();
    this.link.finished(this);
  }
}

/**
 * A byte-transparent TCP proxy on loopback — one listening port in front of one
 * upstream port — whose link can be cut, frozen or slowed at any time (see LinkMode).
 * The test harness puts one between every pair of ZooKeeper servers and in front of
 * every server's client port, to make partitions without root or iptables.
 *
 * Unlike a real partition, a frozen connection still gets TCP acknowledgements from
 * the proxy's kernel, so the sender's writes succeed and no TCP-level timeout fires:
 * only the applications' own timeouts notice — which is what ZooKeeper relies on.
 */
export class LinkProxy {
  readonly port: number;
  readonly upstreamPort: number;
  readonly name: string;
  readonly maxHeldBytes: number;
  readonly connectRetryMs: number;
  readonly #server: Server;
  readonly #connections = new Set<ProxiedConnection>();
  readonly #state: LinkState;
  #mode: LinkMode;
  #accepted = 0;
  #overflows = 0;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, port: number, options: LinkProxyOptions, name: string) {
    this.#server = server;
    this.port = port;
    this.upstreamPort = options.upstreamPort;
    this.name = name;
    this.#mode = options.mode ?? 'pass';
    this.maxHeldBytes = options.maxHeldBytes ?? 8 * 1024 * 1024;
    this.connectRetryMs = options.connectRetryMs ?? 0;
    this.#state = {
      upstreamPort: this.upstreamPort,
      maxHeldBytes: this.maxHeldBytes,
      connectRetryMs: this.connectRetryMs,
      mode: () => this.#mode,
      overflowed: () => {
        this.#overflows += 1;
      },
      finished: (connection) => {
        this.#connections.delete(connection);
      },
    };
    server.on('connection', (socket) => this.#accept(socket));
  }

  /** Resolves once listening on 127.0.0.1; rejects (e.g. EADDRINUSE) when it cannot. */
  static async start(options: LinkProxyOptions): Promise<LinkProxy> {
    const listenPort = options.listenPort ?? 0;
    const name = options.name ?? `link proxy to 127.0.0.1:${options.upstreamPort}`;
    if (!Number.isInteger(options.upstreamPort) || options.upstreamPort <= 0 || options.upstreamPort > 65535) {
      throw new Error(`${name}: upstreamPort must be a TCP port (1-65535), got ${options.upstreamPort}`);
    }
    if (options.mode !== undefined) checkLinkMode(options.mode, name);
    if (options.maxHeldBytes !== undefined && !(options.maxHeldBytes > 0)) {
      throw new Error(`${name}: maxHeldBytes must be a positive number of bytes, got ${options.maxHeldBytes}`);
    }
    if (options.connectRetryMs !== undefined && !(options.connectRetryMs >= 0)) {
      throw new Error(`${name}: connectRetryMs must be a number of ms >= 0, got ${options.connectRetryMs}`);
    }
    // Half-open so that a FIN travels through the link like any other byte.
    const server = createServer({ allowHalfOpen: true, noDelay: true });
    server.listen({ host: '127.0.0.1', port: listenPort, exclusive: true });
    try {
      await Promise.race([
        once(server, 'listening'),
        once(server, 'error').then(([err]: unknown[]) => {
          throw err;
        }),
      ]);
    } catch (err) {
      server.close();
      const error = err as NodeJS.ErrnoException;
      throw Object.assign(new Error(`${name}: cannot listen on 127.0.0.1:${listenPort}: ${error.message}`), { code: error.code });
    }
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error(`${name}: expected a TCP address from a listening server`);
    return new LinkProxy(server, address.port, options, name);
  }

  get mode(): LinkMode {
    return this.#mode;
  }

  setMode(mode: LinkMode): void {
    checkLinkMode(mode, this.name);
    if (this.#closing !== undefined) throw new Error(`${this.name}: closed; cannot switch to ${describeLinkMode(mode)}`);
    this.#mode = mode;
    for (const connection of [...this.#connections]) {
      if (mode === 'drop') connection.reset();
      else connection.retime(mode);
    }
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.#connections.size;
  }

  /** Connections accepted since start, including those dropped at once. */
  get acceptedConnections(): number {
    return this.#accepted;
  }

  /** Bytes held now (frozen or delayed), all connections, both directions. */
  get heldBytes(): number {
    let bytes = 0;
    for (const connection of this.#connections) bytes += connection.heldBytes;
    return bytes;
  }

  /** Connections reset because they held more than maxHeldBytes. */
  get overflowResets(): number {
    return this.#overflows;
  }

  #accept(socket: Socket): void {
    this.#accepted += 1;
    if (this.#closing !== undefined || this.#mode === 'drop') {
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
      return;
    }
    const connection = new ProxiedConnection(this.#state, socket);
    this.#connections.add(connection);
    if (this.#mode !== 'freeze') connection.connectUpstream();
  }

  /** Resets every connection and stops listening. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const connection of [...this.#connections]) connection.reset();
      await closed;
    })();
    return this.#closing;
  }
}
