import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Request opcodes (jute OpCode) that tests name. */
export const OpCode = {
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  create2: 15,
  createContainer: 19,
  createTTL: 21,
  closeSession: -11,
} as const;

/** Requests that create a node. */
export const CREATE_OPS: ReadonlySet<number> = new Set([OpCode.create, OpCode.create2, OpCode.createContainer, OpCode.createTTL]);

/**
 * Requests whose body starts with the path: create, delete, exists, getData, setData,
 * getACL (6), setACL (7), getChildren, sync, getChildren2, check (13), create2,
 * createContainer, createTTL. Others (ping, multi 14, auth 100, setWatches 101,
 * closeSession) have none.
 */
const PATH_OPS: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 19, 21]);

export interface CutRule {
  /** Cut the connection that sends the next create of a path containing this text. */
  readonly pathContains: string;
  /** Time given to the server to apply the create before both sockets are destroyed. */
  readonly applyMs: number;
}

export interface HoldRule {
  /** Opcodes of requests that carry a path (see OpCode): exists, getData, getChildren, sync... */
  readonly opcodes: readonly number[];
  /** The request's path must contain this text. */
  readonly pathContains: string;
}

/** A hold whose request has been seen on `client`'s connection. */
interface Hold {
  readonly client: Socket;
  readonly request: ProxiedRequest;
  /** The reply to `request` has arrived: it and every reply after it wait in `queue`. */
  engaged: boolean;
  readonly queue: Buffer[];
}

/**
 * Splits a byte stream into ZooKeeper frames (a 4-byte big-endian length, then that many
 * bytes). Both directions are framed this way, the connect request and response included.
 */
class FrameReader {
  private pending = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.pending = Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    while (this.pending.length >= 4) {
      const length = this.pending.readInt32BE(0);
      if (this.pending.length < 4 + length) break;
      frames.push(this.pending.subarray(0, 4 + length));
      this.pending = this.pending.subarray(4 + length);
    }
    return frames;
  }
}

/** One request the proxy forwarded (the connect request excluded). */
export interface ProxiedRequest {
  /** Which client connection sent it (1 for the first accepted connection). */
  readonly connection: number;
  /** Date.now() when the proxy forwarded it. */
  readonly at: number;
  readonly xid: number;
  readonly opcode: number;
  /** Null for requests without a path. */
  readonly path: string | null;
}

/** One connect response the proxy relayed: a session established or resumed on a connection. */
export interface ProxiedSession {
  readonly connection: number;
  readonly at: number;
  /** Hexadecimal, as ZooKeeper logs it; "0" when the server refused the session (expired). */
  readonly sessionId: string;
}

/** Header and path of a request frame sent after the connect request. */
function parseRequest(frame: Buffer, connection: number): ProxiedRequest | null {
  // length, xid, opcode; then, for PATH_OPS, the path's length and bytes.
  if (frame.length < 12) return null;
  const xid = frame.readInt32BE(4);
  const opcode = frame.readInt32BE(8);
  let path: string | null = null;
  if (PATH_OPS.has(opcode) && frame.length >= 16) {
    const pathLength = frame.readInt32BE(12);
    path = frame.subarray(16, 16 + Math.max(0, pathLength)).toString('utf8');
  }
  return { connection, at: Date.now(), xid, opcode, path };
}

/**
 * A TCP proxy in front of one ZooKeeper server that understands just enough of the wire
 * protocol (length-prefixed frames; after the connect request each request starts with
 * xid and opcode, each reply with xid, zxid and err) to interfere with one request:
 *
 * - cutNextCreate: lose the answer of one create: the request reaches the server, the
 *   reply never reaches the client, and the connection drops. The client sees
 *   CONNECTIONLOSS for a create that did happen — the case the election recipe's guid
 *   trick exists for.
 * - holdReplyTo / release: delay the answer of one request. Requests keep flowing to the
 *   server, but from the reply to the matching request on, every reply of that connection
 *   (watch notifications and pings included, in order) waits until release(). The client
 *   sees a request that is simply slow — the in-flight check that a stop has to outlive.
 *   A client hears nothing while held, so a hold must stay well below two thirds of the
 *   session timeout (after which the client drops the connection).
 *
 * It also records what went through (`requests`, `sessions`), so a test can tell what a
 * client did after some moment without relying on the client's own log.
 */
export class ZooKeeperProxy {
  /** Every request forwarded so far, in order (pings included). */
  readonly requests: ProxiedRequest[] = [];
  /** Every connect response relayed so far, in order. */
  readonly sessions: ProxiedSession[] = [];
  private rule: CutRule | null = null;
  private cuts = 0;
  private armed: {
    readonly rule: HoldRule;
    readonly seen: (request: ProxiedRequest) => void;
    readonly cancel: (err: Error) => void;
  } | null = null;
  private hold: Hold | null = null;
  private connections = 0;
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

  /**
   * Holds the replies of the connection that next sends a request matching `rule`, starting
   * with that request's own reply, until release(). Resolves with the request once it has
   * been forwarded to the server; its reply may still be on its way (see heldReplies).
   * Rejects when release() or close() comes first. One hold at a time.
   */
  holdReplyTo(rule: HoldRule): Promise<ProxiedRequest> {
    if (this.armed || this.hold) throw new Error('zookeeper proxy: holdReplyTo while a hold is armed or engaged; release() it first');
    if (rule.opcodes.length === 0) throw new Error('zookeeper proxy: holdReplyTo needs at least one opcode');
    const seen = new Promise<ProxiedRequest>((resolve, reject) => {
      this.armed = { rule, seen: resolve, cancel: reject };
    });
    // A caller that releases before any match need not await this promise: that must not crash the run.
    seen.catch(() => undefined);
    return seen;
  }

  /** Replies waiting in the current hold (0 until the matching request's reply has arrived). */
  get heldReplies(): number {
    return this.hold?.queue.length ?? 0;
  }

  /**
   * Ends the hold: the waiting replies go to the client in the order the server sent them,
   * later replies flow through again. Returns how many replies were delivered (0 when the
   * client's connection has gone meanwhile, or when nothing was held).
   */
  release(): number {
    if (this.armed) {
      this.armed.cancel(new Error(`zookeeper proxy: released before any request matched ${JSON.stringify(this.armed.rule)}`));
      this.armed = null;
    }
    const hold = this.hold;
    this.hold = null;
    if (!hold || hold.client.destroyed) return 0;
    for (const frame of hold.queue) hold.client.write(frame);
    return hold.queue.length;
  }

  private relay(client: Socket, upstreamPort: number): void {
    const connection = ++this.connections;
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
    this.sockets.add(client).add(upstream);
    const requests = new FrameReader();
    const replies = new FrameReader();
    let sawConnectRequest = false;
    let sawConnectResponse = false;
    let answersDropped = false;
    const destroy = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      // The held replies have no one to go to: the hold is over.
      if (this.hold?.client === client) this.hold = null;
    };
    client.on('error', destroy);
    upstream.on('error', destroy);
    client.on('close', destroy);
    upstream.on('close', destroy);
    upstream.on('data', (chunk: Buffer) => {
      if (answersDropped) return;
      // Whole frames only, so that a hold starts exactly at the reply it is for.
      for (const frame of replies.push(chunk)) {
        if (!sawConnectResponse) {
          sawConnectResponse = true;
          // Connect response: length, protocolVersion, timeOut, sessionId (int64), passwd.
          if (frame.length >= 20) this.sessions.push({ connection, at: Date.now(), sessionId: frame.readBigUInt64BE(12).toString(16) });
          client.write(frame);
          continue;
        }
        const hold = this.hold?.client === client ? this.hold : null;
        // Reply header: length, xid, zxid, err. Notifications (xid -1) and pings (xid -2) never match a request's xid.
        if (hold && !hold.engaged && frame.length >= 8 && frame.readInt32BE(4) === hold.request.xid) hold.engaged = true;
        if (hold?.engaged) hold.queue.push(frame);
        else client.write(frame);
      }
    });
    client.on('data', (chunk: Buffer) => {
      // Whole frames only, so a create can be recognised before it is sent.
      for (const frame of requests.push(chunk)) {
        const isConnectRequest = !sawConnectRequest;
        sawConnectRequest = true;
        upstream.write(frame);
        if (isConnectRequest) continue;
        const request = parseRequest(frame, connection);
        if (!request) continue;
        this.requests.push(request);
        const armed = this.armed;
        if (armed && armed.rule.opcodes.includes(request.opcode) && request.path?.includes(armed.rule.pathContains)) {
          this.armed = null;
          this.hold = { client, request, engaged: false, queue: [] };
          armed.seen(request);
        }
        const rule = this.rule;
        if (rule && CREATE_OPS.has(request.opcode) && request.path?.includes(rule.pathContains)) {
          this.rule = null;
          this.cuts += 1;
          answersDropped = true;
          setTimeout(destroy, rule.applyMs);
          return;
        }
      }
    });
  }

  async close(): Promise<void> {
    this.release();
    for (const s of this.sockets) s.destroy();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }
}
