import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/** Why the guard closed a connection. */
export type ConnectionDrop = 'evicted-in-handshake' | 'evicted-idle' | 'refused-all-busy';

interface Tracked {
  readonly raw: Socket;
  readonly key: string;
  /** Requests being served on it (HTTP/1.1 pipelining can queue more than one). */
  requests: number;
  secured: boolean;
  closed: boolean;
}

function addressKey(socket: Socket): string | undefined {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress === undefined || remotePort === undefined ? undefined : `${remoteAddress}|${remotePort}`;
}

function oldest<T>(set: Set<T>): T | undefined {
  for (const value of set) return value;
  return undefined;
}

/**
 * A cap on the open connections of an HTTPS server that keeps room for the clients that
 * matter. When the cap is reached, a new connection closes the oldest connection still in
 * its TLS handshake (the API server finishes its handshake in milliseconds: a connection
 * that has not is the likeliest to be an attacker's), else the connection idle the longest;
 * only when every connection is serving a request is the new one closed instead. So holding
 * connections open cannot lock the API server out. (net.Server's maxConnections refuses the
 * new connection instead: the attacker's would stay and the API server's be turned away.)
 */
export class ConnectionGuard {
  /** In their TLS handshake, oldest first. */
  private readonly handshaking = new Set<Tracked>();
  /** Handshake done, no request being served, the longest idle first. */
  private readonly idle = new Set<Tracked>();
  /** By remote address and port: how the TLS socket of a connection finds its raw socket. */
  private readonly byAddress = new Map<string, Tracked>();
  private readonly bySocket = new WeakMap<Socket, Tracked>();
  private open = 0;

  constructor(
    private readonly maxConnections: number,
    private readonly onDrop: (why: ConnectionDrop, remoteAddress: string | undefined) => void,
  ) {}

  /** Open connections, in the handshake or not. */
  get size(): number {
    return this.open;
  }

  /** Connections still in their TLS handshake. */
  get inHandshake(): number {
    return this.handshaking.size;
  }

  attach(server: HttpsServer): void {
    // net.Server's 'connection': the raw TCP socket, before any TLS byte.
    server.on('connection', (raw: Socket) => this.accepted(raw));
    server.on('secureConnection', (tls: Socket) => this.secured(tls));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.request(req, res));
  }

  /** Closes every connection still in its TLS handshake (they have no request to finish). */
  closeHandshaking(): void {
    for (const tracked of [...this.handshaking]) this.drop(tracked);
  }

  private accepted(raw: Socket): void {
    const key = addressKey(raw);
    // Already gone (reset at once): nothing to track.
    if (key === undefined || raw.destroyed) return;
    if (this.open >= this.maxConnections) {
      const victim = oldest(this.handshaking) ?? oldest(this.idle);
      if (victim) {
        this.onDrop(victim.secured ? 'evicted-idle' : 'evicted-in-handshake', victim.raw.remoteAddress);
        this.drop(victim);
      } else {
        this.onDrop('refused-all-busy', raw.remoteAddress);
        raw.destroy();
        return;
      }
    }
    const tracked: Tracked = { raw, key, requests: 0, secured: false, closed: false };
    this.open++;
    this.handshaking.add(tracked);
    this.byAddress.set(key, tracked);
    raw.once('close', () => this.forget(tracked));
  }

  private secured(tls: Socket): void {
    const key = addressKey(tls);
    const tracked = key === undefined ? undefined : this.byAddress.get(key);
    if (!tracked || tracked.closed) return;
    tracked.secured = true;
    this.handshaking.delete(tracked);
    this.idle.add(tracked);
    this.bySocket.set(tls, tracked);
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    const tracked = this.bySocket.get(req.socket);
    if (!tracked || tracked.closed) return;
    tracked.requests++;
    this.idle.delete(tracked);
    res.once('close', () => {
      tracked.requests--;
      // Re-added at the end: the set stays ordered by the time each went idle.
      if (tracked.requests === 0 && !tracked.closed) this.idle.add(tracked);
    });
  }

  private drop(tracked: Tracked): void {
    this.forget(tracked);
    tracked.raw.destroy();
  }

  private forget(tracked: Tracked): void {
    if (tracked.closed) return;
    tracked.closed = true;
    this.open--;
    this.handshaking.delete(tracked);
    this.idle.delete(tracked);
    if (this.byAddress.get(tracked.key) === tracked) this.byAddress.delete(tracked.key);
  }
}
