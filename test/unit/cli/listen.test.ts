import { afterEach, describe, expect, it } from '@jest/globals';
import { EventEmitter, once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { formatListenAddress, listenOn, type ListeningServer } from '../../../cli/listen.js';

/** A server whose listen() on the hosts in `failing` fails with the given code, as a kernel without IPv6 answers. */
class FakeServer extends EventEmitter implements ListeningServer {
  readonly calls: { port: number; host: string; ipv6Only?: boolean }[] = [];
  private bound: AddressInfo | null = null;
  constructor(private readonly failing: Record<string, string>) {
    super();
  }
  listen(options: { port: number; host: string; ipv6Only?: boolean }, listening: () => void): this {
    this.calls.push(options);
    const code = this.failing[options.host];
    setImmediate(() => {
      if (code) {
        this.emit('error', Object.assign(new Error(`listen ${code}: ${options.host}:${options.port}`), { code, syscall: 'listen' }));
      } else {
        this.bound = { address: options.host, family: options.host.includes(':') ? 'IPv6' : 'IPv4', port: options.port || 40404 };
        listening();
      }
    });
    return this;
  }
  address(): AddressInfo | null {
    return this.bound;
  }
}

function recordingLogger() {
  const lines: { fields: object; message: string }[] = [];
  return { lines, info: (fields: object, message: string) => void lines.push({ fields, message }) };
}

describe('listenOn with a fake server', () => {
  it('binds [::] dual-stack (ipv6Only false) and logs nothing when IPv6 is there', async () => {
    const server = new FakeServer({});
    const logger = recordingLogger();
    expect(await listenOn(server, { host: '::', port: 8443 }, logger)).toEqual({ address: '::', family: 'IPv6', port: 8443 });
    expect(server.calls).toEqual([{ port: 8443, host: '::', ipv6Only: false }]);
    expect(logger.lines).toEqual([]);
    expect(server.listenerCount('error')).toBe(0);
  });

  it.each(['EAFNOSUPPORT', 'EADDRNOTAVAIL'])('falls back from [::] to 0.0.0.0 on %s and says so at info', async (code) => {
    const server = new FakeServer({ '::': code });
    const logger = recordingLogger();
    expect(await listenOn(server, { host: '::', port: 9090 }, logger)).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 9090 });
    expect(server.calls.map((c) => c.host)).toEqual(['::', '0.0.0.0']);
    expect(logger.lines).toEqual([{ fields: { port: 9090, code }, message: `IPv6 is not available (${code}): listening on 0.0.0.0 instead of [::], IPv4 only` }]);
    expect(server.listenerCount('error')).toBe(0);
  });

  it('falls back without a logger too', async () => {
    const server = new FakeServer({ '::': 'EAFNOSUPPORT' });
    expect((await listenOn(server, { host: '::', port: 1 })).address).toBe('0.0.0.0');
  });

  it('does not fall back on other errors, nor for other addresses', async () => {
    await expect(listenOn(new FakeServer({ '::': 'EADDRINUSE' }), { host: '::', port: 80 })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const v6 = new FakeServer({ '::1': 'EADDRNOTAVAIL' });
    await expect(listenOn(v6, { host: '::1', port: 80 })).rejects.toMatchObject({ code: 'EADDRNOTAVAIL' });
    expect(v6.calls).toEqual([{ port: 80, host: '::1' }]);
    const v4 = new FakeServer({ '10.9.9.9': 'EADDRNOTAVAIL' });
    await expect(listenOn(v4, { host: '10.9.9.9', port: 80 })).rejects.toMatchObject({ code: 'EADDRNOTAVAIL' });
    expect(v4.calls).toHaveLength(1);
  });

  it('a fallback that fails too reports that failure', async () => {
    await expect(listenOn(new FakeServer({ '::': 'EAFNOSUPPORT', '0.0.0.0': 'EADDRINUSE' }), { host: '::', port: 80 })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});

/** Resolves true when a TCP connection to host:port is accepted, false when it is refused. */
async function accepts(host: string, port: number): Promise<boolean> {
  const socket = connect({ host, port });
  try {
    await once(socket, 'connect');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') return false;
    throw err;
  } finally {
    socket.destroy();
  }
}

describe('listenOn with a real server', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server?.listening) await new Promise((resolve) => server?.close(resolve));
  });

  it('[::]:0 accepts connections on 127.0.0.1 and on ::1', async () => {
    server = createServer((socket) => socket.end());
    const address = await listenOn(server, { host: '::', port: 0 });
    expect(address.address).toBe('::');
    expect(await accepts('127.0.0.1', address.port)).toBe(true);
    expect(await accepts('::1', address.port)).toBe(true);
  });

  it('0.0.0.0:0 stays IPv4 only, as before', async () => {
    server = createServer((socket) => socket.end());
    const address = await listenOn(server, { host: '0.0.0.0', port: 0 });
    expect(address.address).toBe('0.0.0.0');
    expect(await accepts('127.0.0.1', address.port)).toBe(true);
    expect(await accepts('::1', address.port)).toBe(false);
  });
});

describe('formatListenAddress', () => {
  it('spells addresses as the --listen flags do', () => {
    expect(formatListenAddress({ address: '::', port: 8443 })).toBe('[::]:8443');
    expect(formatListenAddress({ address: '0.0.0.0', port: 9090 })).toBe('0.0.0.0:9090');
  });
});
