import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../support/repoRoot.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// The C client sends a request from inside the call that queues it (zoo_acreate ->
// nonblocking_send), and when that send fails (the server reset the connection) it closes
// its socket right there. The unpatched binding kept polling the closed fd number until its
// next timer: a socket opened meanwhile got that number and never connected (Node's watcher
// could not take the slot), and a second ZooKeeper handle that got it aborted the whole
// process in libuv (uv_poll_start: Assertion `!uv__is_closing(handle)'), the crash CI saw in
// the partition harness. patches/zookeeper+7.3.0.patch re-polls after every call and checks
// uv_poll_init. Run in a child process: without the patch it hangs or aborts.

let ensemble: ZooKeeperEnsemble;

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
}, 60_000);

afterAll(async () => {
  await ensemble?.close();
});

const script = `
import net from 'node:net';
const [module, zkPort] = process.argv.slice(1);
const { ZooKeeperSession } = await import(module);
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const listening = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));

// A proxy to ZooKeeper whose client-side connections the script can reset.
const accepted = [];
const proxy = net.createServer((client) => {
  accepted.push(client);
  const upstream = net.connect(Number(zkPort), '127.0.0.1');
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.pipe(upstream).pipe(client);
});
const proxyPort = await listening(proxy);
const echo = net.createServer((socket) => socket.pipe(socket));
const echoPort = await listening(echo);

const a = new ZooKeeperSession({ connectString: '127.0.0.1:' + proxyPort, sessionTimeoutMs: 20000 });
await new Promise((resolve) => a.once('connected', resolve));
await a.create('/zkleader-socket-reuse', '', 'ephemeral');

// Reset the connection, and keep the event loop from seeing it: the binding has not polled.
for (const client of accepted) client.resetAndDestroy();
sleepSync(300);
// The send inside this call fails and the C client closes its socket.
const failed = a.create('/zkleader-socket-reuse-2', '', 'persistent').then(() => 'created', (err) => err.code);
// Everything below opens sockets before the event loop runs again: one of them gets the
// fd number the C client just closed.
const b = new ZooKeeperSession({ connectString: '127.0.0.1:' + zkPort, sessionTimeoutMs: 20000 });
const sockets = Array.from({ length: 4 }, () => net.connect(echoPort, '127.0.0.1'));
const timeout = (what) => new Promise((_, reject) => setTimeout(() => reject(new Error(what + ' did not happen within 10 s')), 10000).unref());
const result = {};
try {
  await Promise.race([Promise.all(sockets.map((s) => new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); }))), timeout('every socket connecting')]);
  result.socketsConnected = sockets.length;
  await Promise.race([new Promise((resolve) => b.once('connected', resolve)), timeout('the second session connecting')]);
  result.secondSession = b.connected;
  result.failedRequest = await failed;
  await Promise.race([new Promise((resolve) => (a.connected ? resolve() : a.once('connected', resolve))), timeout('the first session reconnecting')]);
  result.firstSessionAfter = (await a.exists('/zkleader-socket-reuse')) !== null;
} catch (err) {
  result.error = err.message;
}
process.stdout.write(JSON.stringify(result));
for (const s of sockets) s.destroy();
a.close();
b.close();
proxy.close();
echo.close();
setTimeout(() => process.exit(0), 200);
`;

describe('a request whose send fails on a reset connection', () => {
  it('leaves no poll on the closed fd: sockets and a second session opened at once all connect, and the session goes on', async () => {
    const module = pathToFileURL(join(repoRoot, 'dist', 'zookeeper', 'session.js')).href;
    const port = ensemble.connectString.split(',')[0]?.split(':')[1] as string;
    const { code, signal, stdout, stderr } = await new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--input-type=module', '-e', script, module, port], { timeout: 60_000 }, (err, out, errOut) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, signal: err ? ((err as { signal?: string }).signal ?? null) : null, stdout: out, stderr: errOut }),
      );
    });
    expect({ code, signal, stderr: stderr.split('\n').filter((l) => /Assertion|Error/.test(l)) }).toEqual({ code: 0, signal: null, stderr: [] });
    expect(JSON.parse(stdout)).toEqual({
      socketsConnected: 4,
      secondSession: true,
      // The C client keeps a request whose send failed queued (nonblocking_send only closes
      // the socket) and sends it once it has reconnected to the same session.
      failedRequest: 'created',
      firstSessionAfter: true,
    });
  }, 90_000);
});
