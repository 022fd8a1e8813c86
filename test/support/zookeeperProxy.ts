import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** ZooKeeper request opcodes that create a node (jute OpCode). */
const CREATE_OPS = new Set([1 /* create */, 15 /* create2 */, 19 /* createContainer */, 21 /* createTTL */]);

export interface CutRule {
  /** Cut the connection that sends the next create of a path containing this text. */
  readonly pathContains: string;
  /** Time given to the server to apply the create before both sockets are destroyed. */
  readonly applyMs: number;
}

/**
 * A TCP proxy in front of one ZooKeeper server that understands just enough of the wire
 * protocol (length-prefixed frames; after the connect request each frame starts with
 * xid and opcode) to lose the answer of one create: the request reaches the server, the
 * reply never reaches the client, and the connection drops. The client sees
 * CONNECTIONLOSS for a create that did happen — the case the election recipe's guid
 * trick exists for.
 */
export class ZooKeeperProxy {
  private rule: CutRule | null = null;
  private cuts = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(upstreamPort: number): Promise<ZooKeeperProxy> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('zookeeper proxy: no port');
    const proxy = new ZooKeeperProxy(server, address.port);
    server.on('connection', (client) => proxy.relay(client, upstreamPort));
    return proxy;
  }

  get connectString(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** How many creates had their answer lost so far. */
  get cutCount(): number {
    return this.cuts;
  }

  cutNextCreate(rule: CutRule): void {
    this.rule = rule;
  }

  private relay(client: Socket, upstreamPort: number): void {
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
    this.sockets.add(client).add(upstream);
    let pending = Buffer.alloc(0);
    let sawConnectRequest = false;
    let answersHeld = false;
    const destroy = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', destroy);
    upstream.on('error', destroy);
    client.on('close', destroy);
    upstream.on('close', destroy);
    upstream.on('data', (chunk: Buffer) => {
      if (!answersHeld) client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // Forward whole frames only, so a create can be recognised before it is sent.
      while (pending.length >= 4) {
        const length = pending.readInt32BE(0);
        if (pending.length < 4 + length) break;
        const frame = pending.subarray(0, 4 + length);
        pending = pending.subarray(4 + length);
        const isConnectRequest = !sawConnectRequest;
        sawConnectRequest = true;
        upstream.write(frame);
        if (!isConnectRequest && this.matchesRule(frame)) {
          const rule = this.rule as CutRule;
          this.rule = null;
          this.cuts += 1;
          answersHeld = true;
          setTimeout(destroy, rule.applyMs);
          return;
        }
      }
    });
  }

  private matchesRule(frame: Buffer): boolean {
    if (!this.rule || frame.length < 16) return false;
    const opcode = frame.readInt32BE(8);
    if (!CREATE_OPS.has(opcode)) return false;
    const pathLength = frame.readInt32BE(12);
    const path = frame.subarray(16, 16 + Math.max(0, pathLength)).toString('utf8');
    return path.includes(this.rule.pathContains);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }
}
