import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../support/repoRoot.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// What the zookeeper binding costs per call (issue 15), two patches of
// patches/zookeeper+7.3.0.patch:
//
// 1. By default the C client resolves every host of the connect string again at each
// zookeeper_interest(), that is on every poll of a connected session (resolve_delay_ms 0):
// in a pod whose connect string names the ZooKeeper Service, several DNS lookups a second per
// sidecar, and in the 1,000-member bench hundreds of getaddrinfo calls a second per worker.
// patches/zookeeper+7.3.0.patch sets zoo_set_servers_resolution_delay(30 s): a connected
// session resolves at most every 30 s, and a connection attempt still resolves at once.
//
// Seen with strace (the only witness: getaddrinfo opens a netlink socket per call, and reads
// /etc/hosts for a name): a child process holds two connected sessions idle for a few
// seconds, and marks the window with writes to stdout. Before the patch: about 2.3
// resolutions per session per second in that window; after: none.
//
// 2. The binding's JavaScript wrapper formatted a debug message for every call
// (`util.inspect` of its arguments, callbacks included) before finding that no logger was
// set: about a fifth of a member's CPU in a check, in the 1,000-member bench's profile. Now
// it tests for a logger first. Seen by counting util.inspect calls in a child process.

let ensemble: ZooKeeperEnsemble;
let dir: string;

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  dir = mkdtempSync(join(tmpdir(), 'zkleader-resolution-'));
}, 60_000);

afterAll(async () => {
  await ensemble?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const idleMs = 4000;

const script = `
const [module, connectString, idleMs] = process.argv.slice(1);
const { ZooKeeperSession } = await import(module);
const sessions = [0, 1].map(() => new ZooKeeperSession({ connectString, sessionTimeoutMs: 10000 }));
await Promise.all(sessions.map((s) => new Promise((resolve) => s.once('connected', resolve))));
// One request each, so that every session has polled and answered before the window.
await Promise.all(sessions.map((s) => s.exists('/')));
process.stdout.write('idle-begin\\n');
await new Promise((resolve) => setTimeout(resolve, Number(idleMs)));
process.stdout.write('idle-end\\n');
const connected = sessions.every((s) => s.connected);
for (const s of sessions) s.close();
process.stdout.write(JSON.stringify({ connected }) + '\\n');
setTimeout(() => process.exit(0), 200);
`;

function runNode(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(args[0] as string, args.slice(1), { timeout: 60_000 }, (err, out, errOut) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout: out, stderr: errOut }));
  });
}

const sessionModule = () => pathToFileURL(join(repoRoot, 'dist', 'zookeeper', 'session.js')).href;

describe('a connected session', () => {
  it('does not resolve the connect string again on every poll (at most every 30 s)', async () => {
    const module = sessionModule();
    const port = ensemble.connectString.split(',')[0]?.split(':')[1] as string;
    // A numeric address and a name (localhost: /etc/hosts), as a Service's DNS name would be.
    const connectString = `127.0.0.1:${port},localhost:${port}`;
    const trace = join(dir, 'strace.txt');
    const { code, stdout, stderr } = await runNode(['strace', '-f', '-e', 'trace=socket,openat,write', '-o', trace, process.execPath, '--input-type=module', '-e', script, module, connectString, String(idleMs)]);
    expect({ code, stderr: stderr.split('\n').filter((l) => /Error|strace:/.test(l)) }).toEqual({ code: 0, stderr: [] });
    expect(stdout).toContain('{"connected":true}');
    const lines = readFileSync(trace, 'utf8').split('\n');
    const begin = lines.findIndex((l) => l.includes('"idle-begin'));
    const end = lines.findIndex((l) => l.includes('"idle-end'));
    expect(begin).toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(begin);
    // Everything getaddrinfo does: its netlink socket (AI_ADDRCONFIG), the hosts file, a DNS socket.
    const before = lines.slice(0, begin);
    const resolving = (l: string) => /socket\(AF_NETLINK|socket\(AF_INET.*SOCK_DGRAM|openat\(.*"\/etc\/(hosts|resolv\.conf|nsswitch\.conf|gai\.conf)"/.test(l);
    // The witness works: connecting resolved the names.
    expect(before.filter(resolving).length).toBeGreaterThan(0);
    expect(lines.slice(begin, end).filter(resolving)).toEqual([]);
  }, 90_000);
});

const countingScript = `
import util from 'node:util';
const [module, connectString] = process.argv.slice(1);
let inspected = 0;
const inspect = util.inspect;
util.inspect = (...args) => (inspected++, inspect(...args));
const { ZooKeeperSession } = await import(module);
const session = new ZooKeeperSession({ connectString, sessionTimeoutMs: 10000 });
await new Promise((resolve) => session.once('connected', resolve));
const before = inspected;
for (let i = 0; i < 100; i++) await Promise.all([session.sync('/'), session.exists('/'), session.get('/', () => undefined), session.getChildren('/')]);
process.stdout.write(JSON.stringify({ inspected: inspected - before }) + '\\n');
session.close();
setTimeout(() => process.exit(0), 200);
`;

describe('a request', () => {
  it('formats no debug message when no logger is set (400 requests, no util.inspect)', async () => {
    const { code, stdout, stderr } = await runNode([process.execPath, '--input-type=module', '-e', countingScript, sessionModule(), ensemble.connectString]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(stdout)).toEqual({ inspected: 0 });
  }, 60_000);
});
