import { afterEach, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { LinkProxy, type LinkMode } from '../support/linkProxy.js';

/** A TCP echo server on loopback that counts the connections it sees. */
interface EchoServer {
  readonly port: number;
  readonly accepted: number;
  /** Resets (RST) every connection it holds. */
  resetAll(): void;
  close(): Promise<void>;
}

async function startEchoServer(): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address from the echo server');
  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    resetAll() {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A client socket that records what it receives and how it ended. */
class Client {
  readonly socket: Socket;
  received = Buffer.alloc(0);
  ended = false;
  /** Resolves with the error code of the close ('' for a clean close). */
  readonly closed: Promise<string>;
  #errorCode = '';

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#errorCode = err.code ?? err.message;
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve(this.#errorCode)));
  }

  /** Does not wait for the connection: a proxy in drop mode may reset it first. */
  static open(port: number): Client {
    return new Client(connect({ host: '127.0.0.1', port }));
  }

  static async connect(port: number): Promise<Client> {
    const client = Client.open(port);
    await once(client.socket, 'connect');
    return client;
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /** Until `length` bytes have arrived; rejects naming what did arrive. */
  async receive(length: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < length) {
      if (Date.now() > deadline) throw new Error(`expected ${length} bytes within ${timeoutMs} ms, got ${this.received.length}`);
      if (this.isClosed) throw new Error(`connection closed after ${this.received.length} of ${length} bytes`);
      await sleep(5);
    }
    return this.received;
  }
}

function withinMs<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

describe('LinkProxy', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(mode: LinkMode = 'pass', maxHeldBytes?: number): Promise<{ echo: EchoServer; proxy: LinkProxy }> {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const proxy = await LinkProxy.start({ upstreamPort: echo.port, name: 'test link', mode, ...(maxHeldBytes === undefined ? {} : { maxHeldBytes }) });
    cleanups.push(() => proxy.close());
    return { echo, proxy };
  }

  async function connectClient(port: number): Promise<Client> {
    const client = await Client.connect(port);
    cleanups.push(() => void client.socket.destroy());
    return client;
  }

  test('pass forwards bytes unchanged both ways, and a half-close travels through', async () => {
    const { echo, proxy } = await setUp();
    const client = await connectClient(proxy.port);
    const payload = randomBytes(3 * 1024 * 1024);
    client.socket.end(payload);
    const echoed = await client.receive(payload.length, 20_000);
    expect(echoed.equals(payload)).toBe(true);
    // The echo server ends its side when ours ended: that FIN came through the proxy, and back.
    await withinMs(client.closed, 5000, 'clean close');
    expect(client.ended).toBe(true);
    expect(await client.closed).toBe('');
    expect(echo.accepted).toBe(1);
    expect(proxy.acceptedConnections).toBe(1);
    await eventually(() => proxy.openConnections === 0, 2000, 'proxy forgets the closed connection');
  });

  test('drop resets open connections at once and new ones before they reach the upstream', async () => {
    const { echo, proxy } = await setUp();
    const open = await connectClient(proxy.port);
    open.socket.write('before');
    await open.receive(6);

    const started = Date.now();
    proxy.setMode('drop');
    expect(await withinMs(open.closed, 1000, 'reset of the open connection')).toBe('ECONNRESET');
    expect(Date.now() - started).toBeLessThan(1000);

    const fresh = Client.open(proxy.port);
    cleanups.push(() => void fresh.socket.destroy());
    expect(await withinMs(fresh.closed, 1000, 'reset of a new connection')).toBe('ECONNRESET');
    expect(echo.accepted).toBe(1);
    expect(proxy.acceptedConnections).toBe(2);
    expect(proxy.openConnections).toBe(0);

    proxy.setMode('pass');
    const after = await connectClient(proxy.port);
    after.socket.write('after');
    expect((await after.receive(5)).toString()).toBe('after');
  });

  test('freeze holds bytes without closing; thawing delivers them in order, also for connections made while frozen', async () => {
    const { echo, proxy } = await setUp();
    const open = await connectClient(proxy.port);
    open.socket.write('a1');
    await open.receive(2);

    proxy.setMode('freeze');
    open.socket.write('a2');
    open.socket.write('a3');
    const late = await connectClient(proxy.port);
    late.socket.write('b1');
    await sleep(300);
    // Silence, not a close: nothing came back, nothing was closed, and the upstream
    // has not even heard of the new connection.
    expect(open.received.toString()).toBe('a1');
    expect(late.received.length).toBe(0);
    expect(open.isClosed || late.isClosed).toBe(false);
    expect(echo.accepted).toBe(1);
    expect(proxy.heldBytes).toBe(6);

    proxy.setMode('pass');
    expect((await open.receive(6)).toString()).toBe('a1a2a3');
    expect((await late.receive(2)).toString()).toBe('b1');
    expect(echo.accepted).toBe(2);
    expect(proxy.heldBytes).toBe(0);
  });

  test('a connection closed while frozen, before it reached the upstream, never reaches it', async () => {
    const { echo, proxy } = await setUp('freeze');
    const gone = await connectClient(proxy.port);
    gone.socket.write('never');
    gone.socket.destroy();
    await eventually(() => proxy.openConnections === 0, 2000, 'proxy forgets the abandoned connection');
    proxy.setMode('pass');
    const next = await connectClient(proxy.port);
    next.socket.write('x');
    await next.receive(1);
    expect(echo.accepted).toBe(1);
  });

  test('a reset from the upstream is held while frozen and arrives on thaw', async () => {
    const { echo, proxy } = await setUp();
    const client = await connectClient(proxy.port);
    client.socket.write('x');
    await client.receive(1);
    proxy.setMode('freeze');
    echo.resetAll();
    await sleep(300);
    expect(client.isClosed).toBe(false);
    proxy.setMode('pass');
    expect(await withinMs(client.closed, 1000, 'reset after thaw')).toBe('ECONNRESET');
  });

  test('a frozen connection that holds more than maxHeldBytes is reset', async () => {
    const { proxy } = await setUp('pass', 64 * 1024);
    const client = await connectClient(proxy.port);
    proxy.setMode('freeze');
    client.socket.write(Buffer.alloc(256 * 1024));
    expect(await withinMs(client.closed, 5000, 'reset on overflow')).toBe('ECONNRESET');
    expect(proxy.overflowResets).toBe(1);
    expect(proxy.heldBytes).toBe(0);
  });

  test('delay adds the delay to each direction, keeps the order, and pass releases what is in flight', async () => {
    const delayMs = 150;
    const { proxy } = await setUp({ delayMs });
    const client = await connectClient(proxy.port);
    const started = performance.now();
    client.socket.write('ping');
    await client.receive(4);
    const roundTrip = performance.now() - started;
    // Once on the way in, once on the way out.
    expect(roundTrip).toBeGreaterThanOrEqual(2 * delayMs);
    expect(roundTrip).toBeLessThan(2 * delayMs + 1000);

    const parts = Array.from({ length: 50 }, (_, i) => `<${i}>`);
    for (const part of parts) {
      client.socket.write(part);
      await sleep(2);
    }
    const expected = `ping${parts.join('')}`;
    expect((await client.receive(expected.length)).toString()).toBe(expected);

    proxy.setMode({ delayMs: 60_000 });
    const beforePass = performance.now();
    client.socket.write('late');
    await sleep(100);
    expect(client.received.length).toBe(expected.length);
    proxy.setMode('pass');
    expect((await client.receive(expected.length + 4)).toString()).toBe(`${expected}late`);
    expect(performance.now() - beforePass).toBeLessThan(5000);
  });

  test('freeze then delay releases what was held after the delay', async () => {
    const { proxy } = await setUp('freeze');
    const client = await connectClient(proxy.port);
    client.socket.write('held');
    await sleep(100);
    const thawed = performance.now();
    proxy.setMode({ delayMs: 200 });
    await client.receive(4);
    expect(performance.now() - thawed).toBeGreaterThanOrEqual(200);
  });

  test('a connection can be dropped while the FIN it just forwarded is still being sent', async () => {
    let serverSide: Socket | undefined;
    const upstream = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => undefined);
      serverSide = socket;
    });
    upstream.listen({ host: '127.0.0.1', port: 0 });
    await once(upstream, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
    const address = upstream.address();
    if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
    const proxy = await LinkProxy.start({ upstreamPort: address.port, name: 'fin then drop' });
    const socket = connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true });
    cleanups.push(() => void socket.destroy());
    const client = new Client(socket);
    await eventually(() => serverSide !== undefined, 2000, 'connection through the proxy');
    proxy.setMode('freeze');
    serverSide?.end();
    await sleep(100);

    // Thawing sends the held FIN; dropping at once resets while that FIN is in progress.
    proxy.setMode('pass');
    proxy.setMode('drop');
    expect(proxy.openConnections).toBe(0);
    await eventually(() => client.ended, 2000, 'the FIN');
    // The proxy's side is closed, not leaked (Node cannot reset a socket it is shutting
    // down: the socket would stay open, unowned, and keep the process from exiting), so
    // the client's writes are refused.
    const writing = setInterval(() => client.socket.write('anyone?'), 20);
    try {
      expect(await withinMs(client.closed, 2000, 'close after drop')).toMatch(/ECONNRESET|EPIPE/);
    } finally {
      clearInterval(writing);
    }
    await withinMs(proxy.close(), 2000, 'proxy close');
  });

  test('a refused upstream connection reaches the client as a reset', async () => {
    const { echo, proxy } = await setUp();
    await echo.close();
    const client = await connectClient(proxy.port);
    expect(await withinMs(client.closed, 2000, 'reset after refusal')).toBe('ECONNRESET');
  });

  test('with connectRetryMs, a connection waits for an upstream that starts listening late', async () => {
    const echo = await startEchoServer();
    const port = echo.port;
    await echo.close();
    const proxy = await LinkProxy.start({ upstreamPort: port, name: 'late upstream', connectRetryMs: 2000 });
    cleanups.push(() => proxy.close());
    const client = await connectClient(proxy.port);
    client.socket.write('early');
    await sleep(300);
    expect(client.isClosed).toBe(false);
    // The same port, listening now.
    const accepted: Socket[] = [];
    const late = createServer((socket) => {
      accepted.push(socket);
      socket.pipe(socket);
    });
    late.listen({ host: '127.0.0.1', port });
    await once(late, 'listening');
    cleanups.push(() => {
      for (const socket of accepted) socket.destroy();
      return new Promise<void>((resolve) => late.close(() => resolve()));
    });
    expect((await client.receive(5)).toString()).toBe('early');
  });

  test('close() resets every connection, frees the port, and is idempotent', async () => {
    const { proxy } = await setUp('freeze');
    const client = await connectClient(proxy.port);
    await proxy.close();
    expect(await withinMs(client.closed, 1000, 'reset on close')).toBe('ECONNRESET');
    await expect(Client.connect(proxy.port)).rejects.toThrow(/ECONNREFUSED/);
    await proxy.close();
    expect(() => proxy.setMode('pass')).toThrow(/test link: closed/);
  });

  test('refuses a mode it does not know, naming the link and what it expected', async () => {
    const { proxy } = await setUp();
    expect(() => proxy.setMode({ delayMs: -1 })).toThrow(/test link: expected a link mode .* got \{"delayMs":-1\}/);
    expect(() => proxy.setMode('cut' as LinkMode)).toThrow(/got "cut"/);
    expect(proxy.mode).toBe('pass');
  });

  test('listening on a port in use fails with EADDRINUSE (what the ensemble retries on)', async () => {
    const { echo } = await setUp();
    const failure = await LinkProxy.start({ upstreamPort: echo.port, listenPort: echo.port, name: 'squatted link' }).then(
      () => undefined,
      (err: unknown) => err as NodeJS.ErrnoException,
    );
    expect(failure?.code).toBe('EADDRINUSE');
    expect(failure?.message).toMatch(/squatted link: cannot listen on 127\.0\.0\.1:\d+/);
  });
});
