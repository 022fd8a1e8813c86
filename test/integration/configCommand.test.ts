import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigMap } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { ConfigStore } from '../../zookeeper/configStore.js';
import { digestId, formatCredential, Perms, type DigestCredential } from '../../zookeeper/credentials.js';
import type { ZooKeeperSession } from '../../zookeeper/session.js';
import { ensureTenant, lockRoot } from '../../zookeeper/tenants.js';
import { reserveLoopbackPorts, releaseLoopbackPorts } from '../support/loopbackPorts.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { testAdminCredential, ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';
import { SessionPool } from '../support/zookeeperSessions.js';

// `zkleader config` as an operator runs it (the built CLI, a child process per command)
// against a real ZooKeeper. Each describe has its own root or namespace, so that the
// versions one test writes do not decide another's outcome.

let ensemble: ZooKeeperEnsemble;
let admin: ZooKeeperSession;
const pool = new SessionPool(() => ensemble.connectString);
const dir = mkdtempSync(join(tmpdir(), 'zkleader-config-it-'));
const root = '/cfg';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function zkleader(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(zkleaderBin, args, { env: { PATH: process.env.PATH, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** `config <sub> ...` against the test ensemble under `r`. */
function config(sub: string, args: string[], opts: { root?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Result> {
  return zkleader(['config', sub, ...args, '--zookeeper', ensemble.connectString, '--root', opts.root ?? root], opts);
}

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function store(r = root): ConfigStore {
  return new ConfigStore(admin, { root: r });
}

const ok = (stdout: string): Result => ({ code: 0, stdout, stderr: '' });

/** Exit 1 (or 2) with exactly one line on stderr, starting with the subcommand's name. */
function expectOneLineError(result: Result, code: number, sub: string): string {
  expect([result.code, result.stdout]).toEqual([code, '']);
  expect(result.stderr.startsWith(`zkleader config ${sub}: `)).toBe(true);
  expect(result.stderr.endsWith('\n')).toBe(true);
  expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  return result.stderr.slice(`zkleader config ${sub}: `.length).trimEnd();
}

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  admin = await pool.open(testAdminCredential);
}, 60_000);

afterAll(async () => {
  pool.closeAll();
  await ensemble?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('config set', () => {
  it('stores literals as version 1, 2, ... and prints each; a value may hold "=" and be empty', async () => {
    expect(await config('set', ['shop/lit', '--from-literal', 'mode=blue', '--from-literal', 'db.url=postgres://a?x=1', '--from-literal', 'empty=', '--message', 'first'])).toEqual(ok('config shop/lit version 1\n'));
    expect(await config('set', ['shop/lit', '--from-literal', 'mode=green'])).toEqual(ok('config shop/lit version 2\n'));
    expect(await store().get('shop', 'lit', 1)).toMatchObject({ version: 1, keys: { mode: 'blue', 'db.url': 'postgres://a?x=1', empty: '' }, message: 'first', parent: 0 });
    expect(await store().get('shop', 'lit')).toMatchObject({ version: 2, keys: { mode: 'green' }, message: '', parent: 1 });
  });

  it('--from-file PATH keys the file by its base name, KEY=PATH by KEY, byte for byte', async () => {
    const nginx = file('nginx.conf', 'server {\n  listen 80;\n}\n');
    const raw = file('raw.txt', 'no newline at the end  ');
    expect(await config('set', ['shop/files', '--from-file', nginx, '--from-file', `site.txt=${raw}`, '--from-literal', 'x=1'])).toEqual(ok('config shop/files version 1\n'));
    expect((await store().get('shop', 'files')).keys).toEqual({ 'nginx.conf': 'server {\n  listen 80;\n}\n', 'site.txt': 'no newline at the end  ', x: '1' });
  });

  it('--from-file DIR takes every regular file of the directory (dot files too), skipping subdirectories and symbolic links, as kubectl does', async () => {
    const conf = join(dir, 'conf.d');
    mkdirSync(join(conf, 'sub'), { recursive: true });
    writeFileSync(join(conf, 'a.properties'), 'a=1\n');
    writeFileSync(join(conf, '.env'), 'HIDDEN=1\n');
    writeFileSync(join(conf, 'b.yaml'), 'b: 2\n');
    writeFileSync(join(conf, 'sub', 'deep.txt'), 'not taken');
    symlinkSync(join(conf, 'a.properties'), join(conf, 'link.properties'));
    expect(await config('set', ['shop/dir', '--from-file', conf])).toEqual(ok('config shop/dir version 1\n'));
    expect((await store().get('shop', 'dir')).keys).toEqual({ '.env': 'HIDDEN=1\n', 'a.properties': 'a=1\n', 'b.yaml': 'b: 2\n' });
    const named = await config('set', ['shop/dir', '--from-file', `k=${conf}`]);
    expect(expectOneLineError(named, 2, 'set')).toBe(`--from-file k=${conf}: cannot give a key name for a directory path`);
  });

  it('refuses a key given twice, whatever gave it, and writes nothing', async () => {
    const a = file('dup', 'from a file');
    expect(expectOneLineError(await config('set', ['shop/dup', '--from-file', a, '--from-literal', 'dup=x']), 2, 'set')).toBe(`--from-literal: key "dup" is given twice (also by --from-file ${a})`);
    expect(expectOneLineError(await config('set', ['shop/dup', '--from-literal', 'k=1', '--from-literal', 'k=2']), 2, 'set')).toBe('--from-literal: key "k" is given twice (also by --from-literal)');
    expect(await admin.exists(`${root}/shop/_config/dup`)).toBeNull();
  });

  it('keys and values equal to the current version write nothing, whatever the message; the current number is printed', async () => {
    expect(await config('set', ['shop/same', '--from-literal', 'a=1', '--from-literal', 'b=2'])).toEqual(ok('config shop/same version 1\n'));
    const unchanged = 'config shop/same version 1 (unchanged: the keys are those of the current version; nothing written)\n';
    expect(await config('set', ['shop/same', '--from-literal', 'b=2', '--from-literal', 'a=1', '--message', 'again'])).toEqual(ok(unchanged));
    expect((await store().history('shop', 'same')).map((h) => h.version)).toEqual([1]);
    // A key more, a key fewer, or one value changed is a new version.
    expect(await config('set', ['shop/same', '--from-literal', 'a=1'])).toEqual(ok('config shop/same version 2\n'));
    expect(await config('set', ['shop/same', '--from-literal', 'a=1', '--from-literal', 'b=2'])).toEqual(ok('config shop/same version 3\n'));
    expect(await config('set', ['shop/same', '--from-literal', 'a=1', '--from-literal', 'b=']).then((r) => r.stdout)).toBe('config shop/same version 4\n');
  });

  it('prunes beyond --keep after each write, never the current version', async () => {
    for (let i = 1; i <= 3; i++) expect((await config('set', ['shop/pruned', '--from-literal', `i=${i}`])).code).toBe(0);
    expect(await config('set', ['shop/pruned', '--from-literal', 'i=4', '--keep', '2'])).toEqual(ok('config shop/pruned version 4\npruned versions 1, 2 of shop/pruned (--keep 2)\n'));
    expect((await store().history('shop', 'pruned')).map((h) => h.version)).toEqual([3, 4]);
    // --keep 1 keeps the current version and the one --previous rolls back to.
    expect(await config('set', ['shop/pruned', '--from-literal', 'i=5', '--keep', '1'])).toEqual(ok('config shop/pruned version 5\npruned version 3 of shop/pruned (--keep 1)\n'));
    expect((await store().history('shop', 'pruned')).map((h) => h.version)).toEqual([4, 5]);
  });

  it('refuses a file over what a version may hold with its size (exit 1), before writing anything', async () => {
    const big = file('big.bin', Buffer.alloc(1024 * 1024 + 1, 'x'));
    const message = expectOneLineError(await config('set', ['shop/big', '--from-file', big]), 1, 'set');
    expect(message).toBe(`--from-file ${big}: the file is 1048577 bytes, over the 1044480 bytes a version may hold (the ZooKeeper ensemble's jute.maxbuffer); split it into several configs`);
    // Two files each under the limit, together over it: the store's check names the version's size.
    const half = file('half', 'y'.repeat(600 * 1024));
    const together = expectOneLineError(await config('set', ['shop/big', '--from-file', half, '--from-file', `other=${half}`]), 1, 'set');
    const size = /^config shop\/big: the version is (\d+) bytes, over the 1044480 bytes the ZooKeeper ensemble accepts \(jute.maxbuffer\)/.exec(together);
    expect(Number(size?.[1])).toBeGreaterThan(2 * 600 * 1024);
    expect(await admin.exists(`${root}/shop/_config/big`)).toBeNull();
  }, 30_000);

  it('refuses a file that is not UTF-8 text (a config has no binaryData)', async () => {
    const bin = file('blob', Buffer.from([0xff, 0xfe, 0x00, 0x80]));
    expect(expectOneLineError(await config('set', ['shop/bin', '--from-file', bin]), 1, 'set')).toContain(`--from-file ${bin}: the file is not UTF-8 text`);
  });

  it('a set that raced another fails with exit 1 and the conflict, its version stored but not current', async () => {
    // One process cannot race itself; a writer that rewrites the pointer (same content, new
    // data version) as fast as it can makes the CLI's compare-and-set meet a moved pointer.
    expect((await config('set', ['shop/race', '--from-literal', 'round=0'])).code).toBe(0);
    const pointer = `${root}/shop/_config/race`;
    const writer = await pool.open();
    let hammering = true;
    const hammer = (async () => {
      while (hammering) {
        // Compare-and-set itself: it never puts back a pointer the CLI has moved.
        const node = await writer.get(pointer);
        if (node) await writer.set(pointer, node.data.toString('utf8'), node.stat.version).catch(() => undefined);
      }
    })();
    let conflict: Result | undefined;
    try {
      for (let attempt = 0; attempt < 10 && !conflict; attempt++) {
        const result = await config('set', ['shop/race', '--from-literal', `round=${attempt + 1}`]);
        if (result.code !== 0) conflict = result;
      }
    } finally {
      hammering = false;
      await hammer;
    }
    expect(conflict).toBeDefined();
    const message = expectOneLineError(conflict as Result, 1, 'set');
    const m = /^config shop\/race changed meanwhile \(now version (\d+)\): version (\d+) was stored but is not current; set it again, or `config rollback --to \2`$/.exec(message);
    expect(m).not.toBeNull();
    const history = await store().history('shop', 'race');
    expect(history.find((h) => h.version === Number(m?.[2]))?.current).toBe(false);
  }, 60_000);
});

describe('config get', () => {
  beforeAll(async () => {
    const conf = file('app.conf', 'line one\nline two\n');
    expect((await config('set', ['shop/app', '--from-literal', 'port=8080', '--from-literal', 'debug=true', '--message', 'v1'])).code).toBe(0);
    expect((await config('set', ['shop/app', '--from-file', conf, '--from-literal', 'port=8080', '--from-literal', 'debug=true', '--from-literal', 'empty=', '--message', 'second\nline'])).code).toBe(0);
  }, 30_000);

  it('prints the current version\'s keys as YAML under a line naming the version', async () => {
    const { createdAt } = await store().get('shop', 'app');
    expect(await config('get', ['shop/app'])).toEqual(
      ok(`# config shop/app version 2 (current), created ${createdAt}: second line\napp.conf: |\n  line one\n  line two\ndebug: "true"\nempty: ""\nport: "8080"\n`),
    );
    const { createdAt: first } = await store().get('shop', 'app', 1);
    expect(await config('get', ['shop/app', '--version', '1'])).toEqual(ok(`# config shop/app version 1 (current is 2), created ${first}: v1\ndebug: "true"\nport: "8080"\n`));
  });

  it('--key prints one value exactly as stored', async () => {
    expect(await config('get', ['shop/app', '--key', 'app.conf'])).toEqual(ok('line one\nline two\n'));
    expect(await config('get', ['shop/app', '--key', 'port'])).toEqual(ok('8080'));
    expect(expectOneLineError(await config('get', ['shop/app', '--key', 'nope']), 1, 'get')).toBe('config shop/app version 2 has no key nope; its keys: app.conf, debug, empty, port');
  });

  it('-o json prints the version document', async () => {
    const result = await config('get', ['shop/app', '-o', 'json']);
    expect([result.code, result.stderr]).toEqual([0, '']);
    const { createdAt } = await store().get('shop', 'app');
    expect(JSON.parse(result.stdout)).toEqual({
      namespace: 'shop',
      name: 'app',
      version: 2,
      current: true,
      createdAt,
      parent: 1,
      message: 'second\nline',
      keys: { 'app.conf': 'line one\nline two\n', port: '8080', debug: 'true', empty: '' },
    });
    expect(JSON.parse((await config('get', ['shop/app', '--version', '1', '-o', 'json'])).stdout)).toMatchObject({ version: 1, current: false, parent: 0 });
  });

  it('-o yaml prints a ConfigMap manifest that the Kubernetes schema accepts, every value a string', async () => {
    const result = await config('get', ['shop/app', '-o', 'yaml']);
    expect([result.code, result.stderr]).toEqual([0, '']);
    const manifest = parseYaml(result.stdout) as Record<string, unknown>;
    expect(manifest).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'app', namespace: 'shop', annotations: { 'zkleader.io/config-version': '2' } },
      data: { 'app.conf': 'line one\nline two\n', debug: 'true', empty: '', port: '8080' },
    });
    expect(() => new ConfigMap(manifest as never).validate()).not.toThrow();
  });

  it('-o yaml round-trips through config import: an old version, its annotation taken out, becomes the next version', async () => {
    const yaml = (await config('get', ['shop/app', '--version', '1', '-o', 'yaml'])).stdout;
    // As it was printed it names version 1, which is not current: refused, as kubectl refuses a stale resourceVersion.
    expect(expectOneLineError(await config('import', ['-f', '-'], { input: yaml }), 1, 'import')).toBe(
      'document 1 (ConfigMap shop/app): config shop/app is at version 2, not 1 that this change was based on: it changed meanwhile; take the current version and make the change again, or `config rollback --to 1` to make 1 current as it was (nothing imported)',
    );
    const unannotated = yaml.replace(/\n {2}annotations:\n.*\n/, '\n');
    expect(unannotated).not.toContain('config-version');
    expect(await config('import', ['-f', '-'], { input: unannotated })).toEqual(ok('config shop/app version 3\n'));
    expect((await store().get('shop', 'app')).keys).toEqual((await store().get('shop', 'app', 1)).keys);
    expect((await config('rollback', ['shop/app', '--to', '2'])).code).toBe(0);
  });

  it('a version that does not exist, and a config that does not, exit 1 saying so', async () => {
    expect(expectOneLineError(await config('get', ['shop/app', '--version', '99']), 1, 'get')).toBe('config shop/app has no version 99 (never made, or pruned beyond --keep)');
    expect(expectOneLineError(await config('get', ['shop/nope']), 1, 'get')).toBe('config shop/nope does not exist');
  });
});

describe('config history and rollback', () => {
  beforeAll(async () => {
    for (const [mode, message] of [['a', 'first'], ['b', ''], ['c', 'third one']] as const) {
      expect((await config('set', ['shop/rb', '--from-literal', `mode=${mode}`, ...(message ? ['--message', message] : [])])).code).toBe(0);
    }
  }, 30_000);

  it('history lists every version with its creation time, the current one marked, its parent and message', async () => {
    const h = await store().history('shop', 'rb');
    const result = await config('history', ['shop/rb']);
    const w = h[0]?.createdAt.length ?? 0;
    expect(result).toEqual(
      ok(
        [
          `VERSION  ${'CREATED'.padEnd(w)}  CURRENT  PARENT  MESSAGE`,
          `1        ${h[0]?.createdAt}           -       first`,
          `2        ${h[1]?.createdAt}           1`,
          `3        ${h[2]?.createdAt}  *        2       third one`,
          '',
        ].join('\n'),
      ),
    );
    const json = await config('history', ['shop/rb', '-o', 'json']);
    expect(JSON.parse(json.stdout)).toEqual({
      namespace: 'shop',
      name: 'rb',
      current: 3,
      versions: h.map((e) => ({ version: e.version, message: e.message, createdAt: e.createdAt, parent: e.parent, current: e.version === 3 })),
    });
  });

  it('rollback --previous goes back, twice goes forth again; --to N brings the keys of N back; each stores a new version and prints it', async () => {
    expect(await config('rollback', ['shop/rb', '--previous'])).toEqual(ok('config shop/rb version 4 (the keys of version 2, rolled back from 3)\n'));
    expect(await config('get', ['shop/rb', '--key', 'mode'])).toEqual(ok('b'));
    expect(await config('rollback', ['shop/rb', '--previous'])).toEqual(ok('config shop/rb version 5 (the keys of version 3, rolled back from 4)\n'));
    expect(await config('get', ['shop/rb', '--key', 'mode'])).toEqual(ok('c'));
    expect(await config('rollback', ['shop/rb', '--to', '1'])).toEqual(ok('config shop/rb version 6 (the keys of version 1, rolled back from 5)\n'));
    expect(await config('get', ['shop/rb', '--key', 'mode'])).toEqual(ok('a'));
    expect(await config('rollback', ['shop/rb', '--to', '1'])).toEqual(ok('config shop/rb version 6 (the keys of version 1 are current already; nothing written)\n'));
    expect(await config('rollback', ['shop/rb', '--to', '6'])).toEqual(ok('config shop/rb version 6 (it was current already; nothing written)\n'));
    expect((await config('history', ['shop/rb'])).stdout).toMatch(/\n6 +\S+ +\* +5 +rollback to version 1\n/);
    expect(await config('set', ['shop/rb', '--from-literal', 'mode=d'])).toEqual(ok('config shop/rb version 7\n'));
    expect((await store().get('shop', 'rb')).parent).toBe(6);
    // --keep prunes after a rollback too.
    expect((await config('rollback', ['shop/rb', '--previous', '--keep', '2'])).stdout).toBe('config shop/rb version 8 (the keys of version 6, rolled back from 7)\npruned versions 1, 2, 3, 4, 5, 6 of shop/rb (--keep 2)\n');
  });

  it('a version never made, a config that does not exist, exit 1; --to with --previous, or neither, exit 2', async () => {
    expect(expectOneLineError(await config('rollback', ['shop/rb', '--to', '9']), 1, 'rollback')).toBe('config shop/rb has no version 9 (never made, or pruned beyond --keep)');
    expect(expectOneLineError(await config('rollback', ['shop/none', '--previous']), 1, 'rollback')).toBe('config shop/none does not exist');
    expect(expectOneLineError(await config('history', ['shop/none']), 1, 'history')).toBe('config shop/none does not exist');
    expect(expectOneLineError(await config('rollback', ['shop/rb', '--to', '1', '--previous']), 2, 'rollback')).toBe('--to and --previous exclude each other: give one');
    expect(expectOneLineError(await config('rollback', ['shop/rb']), 2, 'rollback')).toBe('give --to N or --previous');
  });
});

describe('config import', () => {
  const multi = [
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata:',
    '  name: web',
    '  namespace: imp',
    'data:',
    '  index.html: |',
    '    <h1>hi</h1>',
    '  port: "80"',
    '---',
    '# an empty document (kubectl skips it too)',
    '---',
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata:',
    '  name: worker',
    'data:',
    '  threads: "4"',
    '---',
    'apiVersion: v1',
    'kind: List',
    'items:',
    '- apiVersion: v1',
    '  kind: ConfigMap',
    '  metadata: {name: listed, namespace: imp}',
    '  data: {a: "1"}',
    '',
  ].join('\n');

  it('makes every ConfigMap of a multi-document file a new version of its config, the namespace from --namespace where it has none', async () => {
    const path = file('multi.yaml', multi);
    expect(await config('import', ['-f', path, '--namespace', 'imp'])).toEqual(ok('config imp/web version 1\nconfig imp/worker version 1\nconfig imp/listed version 1\n'));
    expect(await store().get('imp', 'web')).toMatchObject({ keys: { 'index.html': '<h1>hi</h1>\n', port: '80' }, message: `imported from ${path}` });
    expect((await store().get('imp', 'worker')).keys).toEqual({ threads: '4' });
    expect((await store().get('imp', 'listed')).keys).toEqual({ a: '1' });
  });

  it('reads standard input with -f -; ConfigMaps equal to their current version write nothing', async () => {
    const unchanged = ' (unchanged: the keys are those of the current version; nothing written)';
    expect(await config('import', ['-f', '-', '-n', 'imp', '--message', 'from CI'], { input: multi.replace('<h1>hi</h1>', '<h1>hello</h1>') })).toEqual(
      ok(`config imp/web version 2\nconfig imp/worker version 1${unchanged}\nconfig imp/listed version 1${unchanged}\n`),
    );
    expect(await store().get('imp', 'web')).toMatchObject({ version: 2, keys: { 'index.html': '<h1>hello</h1>\n', port: '80' }, message: 'from CI' });
  });

  it.each([
    ['a document of another kind, by its index and kind', `${multi.replace('name: worker', 'name: worker\n  namespace: imp')}---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: imp}\n`, 'document 5 is a Secret: config import reads ConfigMaps only (v1); take the other documents out of the file'],
    ['a document without a kind', 'apiVersion: v1\nmetadata: {name: x, namespace: imp}\n', 'document 1 has no kind: config import reads ConfigMaps only (v1); take the other documents out of the file'],
    ['binaryData', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bin, namespace: imp}\ndata: {a: b}\nbinaryData: {blob: AAEC}\n', 'document 1 (ConfigMap imp/bin) has binaryData: a config holds text values only; move them into data (e.g. as base64 text), or into a Secret'],
    ['a ConfigMap without a namespace', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lost}\ndata: {a: b}\n', 'document 1: ConfigMap lost has no metadata.namespace; give it one, or --namespace'],
    ['a value that is no string', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: num, namespace: imp}\ndata: {port: 8080}\n', 'document 1 (ConfigMap imp/num): data.port is a number; ConfigMap values are strings: quote it'],
    ['a bad key', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: k, namespace: imp}\ndata: {"a/b": x}\n', 'document 1 (ConfigMap imp/k): config key "a/b" must be letters, digits'],
    ['a config named twice', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two, namespace: imp}\ndata: {a: b}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: two, namespace: imp}\ndata: {a: c}\n', 'document 2 (ConfigMap imp/two): ConfigMap imp/two is also document 1 (ConfigMap imp/two); one version per config and import'],
    ['YAML that does not parse', 'apiVersion: v1\nkind: [ConfigMap\n', 'document 1 is not valid YAML'],
    ['no ConfigMap at all', '---\n# nothing\n', 'standard input holds no ConfigMap'],
  ])('refuses %s with exit 1 and writes nothing', async (_what, input, message) => {
    const before = await admin.getChildren(`${root}/imp/_config`);
    const result = await config('import', ['-f', '-'], { input });
    expect(expectOneLineError(result, 1, 'import')).toContain(message);
    expect(await admin.getChildren(`${root}/imp/_config`)).toEqual(before);
    expect((await store().get('imp', 'web')).version).toBe(2);
  });

  it('an import of what is already current writes nothing (re-running it is safe)', async () => {
    const path = file('again.yaml', multi);
    const before = (await store().history('imp', 'web')).length;
    await config('import', ['-f', path, '-n', 'imp']);
    const again = await config('import', ['-f', path, '-n', 'imp']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^config imp\/web version (\d+) \(unchanged: the keys are those of the current version; nothing written\)\nconfig imp\/worker version \d+ \(unchanged/);
    expect((await store().history('imp', 'web')).length).toBe(before + 1);
  });

  it('a manifest from config get -o yaml is written only while the version it names is current: an edit of an old copy fails and writes nothing', async () => {
    expect((await config('set', ['imp/edited', '--from-literal', 'mode=blue'])).code).toBe(0);
    const exported = (await config('get', ['imp/edited', '-o', 'yaml'])).stdout;
    expect(exported).toContain('zkleader.io/config-version: "1"');
    // Edited and imported: version 2, based on 1.
    expect(await config('import', ['-f', '-'], { input: exported.replace('mode: blue', 'mode: green') })).toEqual(ok('config imp/edited version 2\n'));
    // The same old copy edited differently: version 1 is no longer current. A fresh
    // ConfigMap before it in the stream is not written either: every copy is checked first.
    const fresh = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh, namespace: imp}\ndata: {a: b}\n---\n';
    const stale = await config('import', ['-f', '-'], { input: fresh + exported.replace('mode: blue', 'mode: red') });
    expect(expectOneLineError(stale, 1, 'import')).toBe(
      'document 2 (ConfigMap imp/edited): config imp/edited is at version 2, not 1 that this change was based on: it changed meanwhile; take the current version and make the change again, or `config rollback --to 1` to make 1 current as it was (nothing imported)',
    );
    expect((await store().get('imp', 'edited')).keys).toEqual({ mode: 'green' });
    expect(await admin.exists(`${root}/imp/_config/fresh`)).toBeNull();
    // The old copy as it was equals nothing current either; the copy of version 2 is equal: nothing to write.
    const current = (await config('get', ['imp/edited', '-o', 'yaml'])).stdout;
    expect((await config('import', ['-f', '-'], { input: current })).stdout).toBe('config imp/edited version 2 (unchanged: the keys are those of the current version; nothing written)\n');
    // Without the annotation, an import writes regardless.
    const unannotated = exported.replace(/\n {2}annotations:\n.*\n/, '\n').replace('mode: blue', 'mode: red');
    expect(unannotated).not.toContain('config-version');
    expect(await config('import', ['-f', '-'], { input: unannotated })).toEqual(ok('config imp/edited version 3\n'));
  });

  it('refuses an annotation zkleader.io/config-version that is no version number', async () => {
    const input = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: badver\n  namespace: imp\n  annotations: {zkleader.io/config-version: "latest"}\ndata: {a: b}\n';
    expect(expectOneLineError(await config('import', ['-f', '-'], { input }), 1, 'import')).toBe(
      'document 1 (ConfigMap imp/badver): annotation zkleader.io/config-version is "latest", not a version number; it names the version the manifest was taken from — fix it, or remove it to write regardless of the current version',
    );
    expect(await admin.exists(`${root}/imp/_config/badver`)).toBeNull();
  });

  it('refuses a namespace that disagrees with --namespace, and an unreadable file (exit 2)', async () => {
    const other = expectOneLineError(await config('import', ['-f', '-', '-n', 'other'], { input: multi }), 1, 'import');
    expect(other).toBe('document 1: ConfigMap web is in namespace imp, not other of --namespace; leave out --namespace or fix the document');
    expect(expectOneLineError(await config('import', ['-f', join(dir, 'absent.yaml')]), 2, 'import')).toBe(`--filename: cannot read "${join(dir, 'absent.yaml')}": no such file`);
    expect(expectOneLineError(await config('import', []), 2, 'import')).toBe('--filename is required');
  });
});

describe('config delete', () => {
  it('deletes every version and the pointer; a second delete exits 1', async () => {
    expect((await config('set', ['shop/gone', '--from-literal', 'a=1'])).code).toBe(0);
    expect((await config('set', ['shop/gone', '--from-literal', 'a=2'])).code).toBe(0);
    expect(await config('delete', ['shop/gone'])).toEqual(ok('config shop/gone deleted\n'));
    expect(await admin.exists(`${root}/shop/_config/gone`)).toBeNull();
    expect(expectOneLineError(await config('delete', ['shop/gone']), 1, 'delete')).toBe('config shop/gone does not exist');
    // A new config of the same name starts again at version 1.
    expect(await config('set', ['shop/gone', '--from-literal', 'a=3'])).toEqual(ok('config shop/gone version 1\n'));
  });
});

describe('usage errors exit 2 with one line naming the flag or argument', () => {
  it.each([
    ['set', ['shop/app'], 'no keys: give --from-file [KEY=]PATH or --from-literal KEY=VALUE (each as often as needed)'],
    ['set', ['shop/app', '--from-literal', 'a/b=1'], '--from-literal: config key "a/b" must be letters, digits, "-", "_" or "."'],
    ['set', ['shop/app', '--from-literal', 'novalue'], '--from-literal: expected KEY=VALUE, got a value without "="'],
    ['set', ['shop/app', '--from-literal', '=v'], '--from-literal: config key "" must be letters'],
    ['set', ['shop/app', '--from-file', '/nonexistent/f'], '--from-file: cannot read "/nonexistent/f": no such file or directory'],
    ['set', ['shop/app', '--from-file', '=/x'], '--from-file "=/x": the key name for file path /x is missing'],
    ['set', ['shop/app', '--from-file', 'a=b=c'], '--from-file "a=b=c": key names or file paths cannot contain "="'],
    ['set', ['shop/app', '--from-file', '@bad-name'], '--from-file @bad-name: config key "bad name" must be letters'],
    ['set', ['shop/app', '--from-literal', 'a=1', '--keep', '0'], '--keep: expected a whole number of versions to keep, at least 1, got "0"'],
    ['set', ['shop', '--from-literal', 'a=1'], 'NAMESPACE/NAME: expected NAMESPACE/NAME such as shop/app, got "shop"'],
    ['set', ['shop/app/x', '--from-literal', 'a=1'], 'NAMESPACE/NAME: expected NAMESPACE/NAME such as shop/app, got "shop/app/x"'],
    ['set', ['Shop/app', '--from-literal', 'a=1'], 'NAMESPACE/NAME: the namespace: expected a DNS-1123 label'],
    ['set', ['shop/App', '--from-literal', 'a=1'], 'NAMESPACE/NAME: the name: config name "App" must be a ConfigMap name'],
    ['set', ['shop/_config', '--from-literal', 'a=1'], 'NAMESPACE/NAME: the name: config name "_config" must be a ConfigMap name'],
    ['set', ['--from-literal', 'a=1'], 'NAMESPACE/NAME is required'],
    ['set', ['shop/a', 'shop/b', '--from-literal', 'a=1'], 'one NAMESPACE/NAME only, got "shop/a" "shop/b"'],
    ['set', ['shop/app', '--from-literal', 'a=1', '--bogus'], 'unknown flag --bogus'],
    ['get', ['shop/app', '--version', 'latest'], '--version: expected a version number (1 or more), got "latest"'],
    ['get', ['shop/app', '--version', '0'], '--version: expected a version number (1 or more), got "0"'],
    ['get', ['shop/app', '-o', 'xml'], '--output: expected json or yaml, got "xml"'],
    ['get', ['shop/app', '--key', 'a', '-o', 'json'], '--key prints one value as it is: leave out -o'],
    ['get', ['shop/app', '--key', 'a/b'], '--key: config key "a/b" must be'],
    ['history', ['shop/app', '-o', 'yaml'], '--output: expected table or json, got "yaml"'],
    ['rollback', ['shop/app', '--to', 'x'], '--to: expected a version number (1 or more), got "x"'],
    ['delete', [], 'NAMESPACE/NAME is required'],
    ['import', ['shop/app', '-f', '-'], 'unexpected argument "shop/app"'],
    ['import', ['-f', '-', '--namespace', 'Bad'], '--namespace: expected a DNS-1123 label'],
    ['get', ['shop/app', '--credential-file', '/nonexistent/cred'], '--credential-file: credential file /nonexistent/cred does not exist'],
  ])('config %s %j', async (sub, args, message) => {
    const resolved = args.map((a) => (a === '@bad-name' ? file('bad name', 'x') : a));
    const result = await config(sub, resolved);
    const error = expectOneLineError(result, 2, sub);
    expect(error.startsWith(message.replace('@bad-name', join(dir, 'bad name')))).toBe(true);
  });

  it('--zookeeper is required; unknown and missing subcommands exit 2; --help works on the command and each subcommand', async () => {
    expect(await zkleader(['config', 'get', 'shop/app'])).toEqual({ code: 2, stdout: '', stderr: 'zkleader config get: --zookeeper is required\n' });
    expect(await zkleader(['config', 'frobnicate'])).toEqual({ code: 2, stdout: '', stderr: 'zkleader config: unknown subcommand "frobnicate"; expected set, get, history, rollback, import, delete\n' });
    const bare = await zkleader(['config']);
    expect([bare.code, bare.stderr]).toEqual([2, expect.stringContaining('Usage: zkleader config <set|get|history|rollback|import|delete>')]);
    const help = await zkleader(['config', '--help']);
    expect([help.code, help.stdout]).toEqual([0, expect.stringMatching(/Subcommands:\n {2}set {7}.*\n {2}get {7}.*\n {2}history {3}.*\n {2}rollback {2}.*\n {2}import {4}.*\n {2}delete {4}/)]);
    for (const sub of ['set', 'get', 'history', 'rollback', 'import', 'delete']) {
      const { code: exit, stdout } = await zkleader(['config', sub, '--help']);
      expect([sub, exit, stdout]).toEqual([sub, 0, expect.stringContaining(`Usage: zkleader config ${sub}`)]);
    }
    expect((await zkleader(['config', 'set', '--help'])).stdout).toMatch(/--from-literal KEY=VALUE +.*\(repeatable\)/);
    expect((await zkleader(['--help'])).stdout).toMatch(/\n {2}config {2,}manage configs in ZooKeeper/);
  });

  it('an unreachable ZooKeeper exits 1 naming the connect string', async () => {
    const [port] = await reserveLoopbackPorts(1);
    try {
      const result = await zkleader(['config', 'get', 'shop/app', '--zookeeper', `127.0.0.1:${port}`, '--timeout', '1s']);
      expect(result).toEqual({ code: 1, stdout: '', stderr: `zkleader config get: no ZooKeeper session with 127.0.0.1:${port} within 1s\n` });
    } finally {
      releaseLoopbackPorts([port as number]);
    }
  });
});

describe("a tenant's configs", () => {
  const troot = '/cfg-tenant';
  const alpha: DigestCredential = { user: 'zkleader-alpha', password: 'alpha-password' };
  const beta: DigestCredential = { user: 'zkleader-beta', password: 'beta-password' };
  const alphaFile = join(dir, 'alpha.credential');
  const betaFile = join(dir, 'beta.credential');
  const adminFile = join(dir, 'admin.credential');
  const tenantAcl = [{ perms: Perms.ALL, scheme: 'digest', id: digestId(alpha) }];

  beforeAll(async () => {
    writeFileSync(alphaFile, `${formatCredential(alpha)}\n`);
    writeFileSync(betaFile, formatCredential(beta));
    writeFileSync(adminFile, formatCredential(testAdminCredential));
    await lockRoot(admin, troot);
    await ensureTenant(admin, troot, 'alpha', [digestId(alpha)]);
    await ensureTenant(admin, troot, 'beta', [digestId(beta)]);
  });

  it("with the tenant's credential every node it creates carries the tenant's ACL; the credential also comes from ZKLEADER_CREDENTIAL_FILE", async () => {
    expect(await config('set', ['alpha/app', '--from-literal', 'k=v', '--credential-file', alphaFile], { root: troot })).toEqual(ok('config alpha/app version 1\n'));
    for (const node of ['_config', '_config/app', '_config/app/v-0000000000']) {
      expect([node, (await admin.getAcl(`${troot}/alpha/${node}`))?.acl]).toEqual([node, tenantAcl]);
    }
    expect(await config('get', ['alpha/app', '--key', 'k'], { root: troot, env: { ZKLEADER_CREDENTIAL_FILE: alphaFile } })).toEqual(ok('v'));
  });

  it('the admin (superuser) writes nodes with the tenant\'s ACL too, so that the members can read them', async () => {
    expect(await config('set', ['alpha/app', '--from-literal', 'k=admin', '--credential-file', adminFile], { root: troot })).toEqual(ok('config alpha/app version 2\n'));
    expect((await admin.getAcl(`${troot}/alpha/_config/app/v-0000000001`))?.acl).toEqual(tenantAcl);
    expect(await config('get', ['alpha/app', '--key', 'k', '--credential-file', alphaFile], { root: troot })).toEqual(ok('admin'));
  });

  it('without a credential, NOAUTH says the namespace is a tenant and this needs its credential', async () => {
    for (const [sub, args] of [
      ['get', ['alpha/app']],
      ['set', ['alpha/app', '--from-literal', 'k=evil']],
      ['rollback', ['alpha/app', '--previous']],
      ['history', ['alpha/app']],
      ['delete', ['alpha/app']],
    ] as const) {
      const message = expectOneLineError(await config(sub, [...args], { root: troot }), 1, sub);
      expect([sub, message]).toEqual([
        sub,
        'ZooKeeper refused (NOAUTH): namespace alpha is a tenant, open only to its members; this needs its credential (zkleader-alpha) with --credential-file (the Secret zkleader-zookeeper in namespace alpha, key credential)',
      ]);
    }
    // Nothing changed: the admin (superuser) still reads version 2.
    expect(await store(troot).get('alpha', 'app')).toMatchObject({ version: 2, keys: { k: 'admin' } });
  });

  it("another tenant's credential, or a wrong password of its own, is named as such", async () => {
    const other = expectOneLineError(await config('set', ['alpha/app', '--from-literal', 'k=evil', '--credential-file', betaFile], { root: troot }), 1, 'set');
    expect(other).toBe(
      `ZooKeeper refused (NOAUTH): namespace alpha is a tenant, open only to its members, and --credential-file ${betaFile} holds another tenant's (user zkleader-beta); this needs zkleader-alpha's credential (the Secret zkleader-zookeeper in namespace alpha, key credential)`,
    );
    const wrong = file('alpha-old.credential', 'zkleader-alpha:retired-password');
    const retired = expectOneLineError(await config('get', ['alpha/app', '--credential-file', wrong], { root: troot }), 1, 'get');
    expect(retired).toBe(
      `ZooKeeper refused (NOAUTH): namespace alpha is a tenant and does not accept the password of zkleader-alpha in --credential-file ${wrong} (rotated and retired?); use the current one (the Secret zkleader-zookeeper in namespace alpha, key credential)`,
    );
  });

  it('a namespace that is no tenant under a locked root: only the admin creates it', async () => {
    const message = expectOneLineError(await config('set', ['gamma/app', '--from-literal', 'k=v'], { root: troot }), 1, 'set');
    expect(message).toBe(`ZooKeeper refused (NOAUTH): there is no namespace node ${troot}/gamma and only the admin creates namespaces under ${troot}; make gamma a tenant first (zkleader tenant add gamma)`);
  });
});
