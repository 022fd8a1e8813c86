import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from './processRegistry.js';

/**
 * Free TCP ports on 127.0.0.1 for servers that a test starts in another process.
 *
 * The kernel picks each port (bind to port 0); a lock file per port, created
 * exclusively, keeps the port ours until release, so parallel jest workers — which
 * may be handed the same port once we let it go — never use the same one. A lock
 * whose owner process is gone is taken over.
 */
const lockDir = join(tmpdir(), 'zkleader-test-ports');
const held = new Set<number>();

function lockPath(port: number): string {
  return join(lockDir, `${port}.lock`);
}

function tryLock(port: number): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath(port), String(process.pid), { flag: 'wx' });
      held.add(port);
      if (held.size === 1) process.on('exit', releaseAllOnExit);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(lockPath(port), 'utf8'));
      } catch {
        // Released between our write and our read: try again.
      }
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) return false;
      rmSync(lockPath(port), { force: true });
    }
  }
  return false;
}

function releaseAllOnExit(): void {
  for (const port of held) rmSync(lockPath(port), { force: true });
}

async function listenOnFreePort(): Promise<Server> {
  const server = createServer();
  server.listen({ host: '127.0.0.1', port: 0, exclusive: true });
  await once(server, 'listening');
  return server;
}

/** `count` distinct free loopback ports, locked for this process until released. */
export async function reserveLoopbackPorts(count: number): Promise<number[]> {
  mkdirSync(lockDir, { recursive: true });
  const open: Server[] = [];
  const ports: number[] = [];
  try {
    // Keep every probe listening until all are picked, so the kernel cannot hand out one twice.
    for (let tries = 0; ports.length < count; tries++) {
      if (tries > count * 20) throw new Error(`found only ${ports.length} of ${count} free loopback ports`);
      const server = await listenOnFreePort();
      open.push(server);
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('expected a TCP address from a listening server');
      if (tryLock(address.port)) ports.push(address.port);
    }
  } catch (err) {
    releaseLoopbackPorts(ports);
    throw err;
  } finally {
    await Promise.all(open.map((s) => new Promise((resolve) => s.close(resolve))));
  }
  return ports;
}

export function releaseLoopbackPorts(ports: Iterable<number>): void {
  for (const port of ports) {
    if (!held.delete(port)) continue;
    rmSync(lockPath(port), { force: true });
  }
  if (held.size === 0) process.off('exit', releaseAllOnExit);
}
