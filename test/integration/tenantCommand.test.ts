import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { creatorAllAcl, digestAcl, digestId, formatCredential, parseCredential, Perms, readCredentialFile, type AclEntry, type DigestCredential } from '../../zookeeper/credentials.js';
import { LeaderElection } from '../../zookeeper/election.js';
import type { ElectionSnapshot } from '../../zookeeper/electionSnapshot.js';
import type { ZooKeeperSession } from '../../zookeeper/session.js';
import { ApiEmulator } from '../support/apiEmulator/index.js';
import { reserveLoopbackPorts, releaseLoopbackPorts } from '../support/loopbackPorts.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { testAdminCredential, ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';
import { resultCode, SessionPool } from '../support/zookeeperSessions.js';

// `zkleader tenant` as an admin runs it (the built CLI), against a real ZooKeeper whose
// superuser is testAdminCredential, and the Kubernetes API emulator for the Secrets.
// Each describe uses its own ZooKeeper root, so that one's locked root does not decide
// another's outcome.

let ensemble: ZooKeeperEnsemble;
let emu: ApiEmulator;
let core: CoreV1Api;
let kubeconfig: string;
let admin: ZooKeeperSession;
const pool = new SessionPool(() => ensemble.connectString);
const open = (credential?: DigestCredential) => pool.open(credential);
const elections: LeaderElection[] = [];
const dir = mkdtempSync(join(tmpdir(), 'zkleader-tenant-it-'));
const adminFile = join(dir, 'admin');
const secretName = 'zkleader-zookeeper';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function zkleader(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(zkleaderBin, args, { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** `tenant <sub> [NS]` against the test ensemble as the admin, with --root; API mode through the emulator's kubeconfig unless `api` is false. */
function tenant(sub: string, args: string[], root: string, api = true): Promise<Result> {
  return zkleader(['tenant', sub, ...args, '--zookeeper', ensemble.connectString, '--admin-credential-file', adminFile, '--root', root, ...(api ? ['--kubeconfig', kubeconfig] : [])]);
}

function secretCredential(secret: V1Secret | undefined): DigestCredential {
  return parseCredential(Buffer.from(secret?.data?.credential ?? '', 'base64').toString('utf8'), 'the Secret');
}

/** Every node at and below `path` with its ACL, as `path → [scheme:id:perms]`. */
async function treeAcls(path: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const visit = async (node: string): Promise<void> => {
    const acl = await admin.getAcl(node);
    if (!acl) return;
    out[node] = acl.acl.map((e: AclEntry) => `${e.scheme}:${e.id}:${e.perms}`).sort();
    for (const child of (await admin.getChildren(node)).sort()) await visit(`${node}/${child}`);
  };
  await visit(path);
  return out;
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const only = (credential: DigestCredential) => [`digest:${digestId(credential)}:${Perms.ALL}`];
const writesSince = (since: number) => emu.requests.slice(since).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`);

beforeAll(async () => {
  writeFileSync(adminFile, formatCredential(testAdminCredential));
  [ensemble, emu] = await Promise.all([ZooKeeperEnsemble.start({ size: 1 }), ApiEmulator.start()]);
  kubeconfig = await emu.kubeconfigFile();
  core = emu.kubeConfig().makeApiClient(CoreV1Api);
  for (const name of ['alpha', 'beta', 'gamma', 'delta', 'legacy', 'one', 'two', 'shop', 'quiet']) await core.createNamespace({ body: { metadata: { name } } });
  admin = await open(testAdminCredential);
}, 60_000);

afterAll(async () => {
  await Promise.all(elections.map((e) => e.close()));
  pool.closeAll();
  await emu?.close();
  await ensemble?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('zkleader tenant add (through the API)', () => {
  const root = '/t-add';

  it('creates the tenant node with exactly the tenant id, writes its credential as the Secret, and locks the root', async () => {
    const { code: exit, stdout, stderr } = await tenant('add', ['alpha'], root);
    expect([exit, stderr]).toEqual([0, '']);
    const secret = emu.getSecret('alpha', secretName);
    const credential = secretCredential(secret);
    expect(credential.user).toBe('zkleader-alpha');
    expect(secret?.metadata?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'zkleader' });
    expect(secret?.type).toBe('Opaque');
    expect(await treeAcls(`${root}/alpha`)).toEqual({ [`${root}/alpha`]: only(credential) });
    expect((await admin.getAcl(root))?.acl).toEqual([{ perms: Perms.READ, scheme: 'world', id: 'anyone' }]);
    expect(stdout.split('\n').filter(Boolean)).toEqual([
      `root ${root} created: only the admin creates namespaces under it`,
      `tenant alpha created: ${root}/alpha and everything below it belong to zkleader-alpha alone`,
      'Secret alpha/zkleader-zookeeper created with the credential of zkleader-alpha',
    ]);
    expect(stdout).not.toContain(credential.password);
  });

  it('a second run changes nothing, and says so', async () => {
    const before = { acl: await admin.getAcl(`${root}/alpha`), secret: emu.getSecret('alpha', secretName)?.metadata?.resourceVersion };
    const since = emu.requests.length;
    const { code: exit, stdout, stderr } = await tenant('add', ['alpha'], root);
    expect([exit, stderr]).toEqual([0, '']);
    expect(stdout).toBe('tenant alpha is up to date (1 password of zkleader-alpha): nothing changed\n');
    expect(writesSince(since)).toEqual([]);
    expect(await admin.getAcl(`${root}/alpha`)).toEqual(before.acl);
    expect(emu.getSecret('alpha', secretName)?.metadata?.resourceVersion).toBe(before.secret);
  });

  it("anonymous sessions and another tenant's credential get NOAUTH creating, changing and deleting under the tenant", async () => {
    expect((await tenant('add', ['beta'], root)).code).toBe(0);
    const alpha = secretCredential(emu.getSecret('alpha', secretName));
    const beta = secretCredential(emu.getSecret('beta', secretName));
    const member = await open(alpha);
    await member.ensurePath(`${root}/alpha/orders`, creatorAllAcl);
    const candidate = await member.create(`${root}/alpha/orders/c-n_`, '{}', 'ephemeral-sequential', creatorAllAcl);
    for (const outsider of [await open(), await open(beta)]) {
      expect({
        create: await resultCode(outsider.create(`${root}/alpha/intruder`, '', 'persistent')),
        createInElection: await resultCode(outsider.create(`${root}/alpha/orders/intruder`, '', 'persistent')),
        setData: await resultCode(outsider.set(`${root}/alpha/orders`, 'x')),
        setAcl: await resultCode(outsider.setAcl(`${root}/alpha/orders`, digestAcl([digestId(beta)]))),
        deleteCandidate: await resultCode(outsider.delete(candidate)),
        deleteElection: await resultCode(outsider.delete(`${root}/alpha/orders`)),
        newNamespace: await resultCode(outsider.create(`${root}/squat`, '', 'persistent')),
      }).toEqual({ create: 'NOAUTH', createInElection: 'NOAUTH', setData: 'NOAUTH', setAcl: 'NOAUTH', deleteCandidate: 'NOAUTH', deleteElection: 'NOAUTH', newNamespace: 'NOAUTH' });
    }
    // The tenant's own credential may.
    expect(await resultCode(member.set(`${root}/alpha/orders`, 'mine'))).toBe('ok');
    expect(await member.getChildren(`${root}/alpha/orders`)).toHaveLength(1);
  });

  it('an existing tenant whose Secret is gone needs --rotate (the password cannot be recovered); --rotate, then --retire-old', async () => {
    expect((await tenant('add', ['delta'], root)).code).toBe(0);
    const first = secretCredential(emu.getSecret('delta', secretName));
    await core.deleteNamespacedSecret({ name: secretName, namespace: 'delta' });
    const since = emu.requests.length;
    const refused = await tenant('add', ['delta'], root);
    expect([refused.code, refused.stdout]).toEqual([1, '']);
    expect(refused.stderr).toBe(
      'zkleader tenant add: Secret delta/zkleader-zookeeper does not exist, and the tenant\'s password cannot be recovered (ZooKeeper holds only its hash): run again with --rotate for a new password (the current one keeps working until --retire-old)\n',
    );
    expect(writesSince(since)).toEqual([]);
    expect(await treeAcls(`${root}/delta`)).toEqual({ [`${root}/delta`]: only(first) });

    const rotated = await tenant('add', ['delta', '--rotate'], root);
    expect([rotated.code, rotated.stderr]).toEqual([0, '']);
    const second = secretCredential(emu.getSecret('delta', secretName));
    expect(second.password).not.toBe(first.password);
    expect(await treeAcls(`${root}/delta`)).toEqual({ [`${root}/delta`]: [...only(first), ...only(second)].sort() });
    expect(rotated.stdout).toContain('the old password stays valid until `zkleader tenant add delta --retire-old`');

    const retired = await tenant('add', ['delta', '--retire-old'], root);
    expect([retired.code, retired.stderr]).toEqual([0, '']);
    expect(retired.stdout).toBe(`retired 1 old password of zkleader-delta: only the current one opens ${root}/delta now (1 node updated)\n`);
    expect(await treeAcls(`${root}/delta`)).toEqual({ [`${root}/delta`]: only(second) });
    expect(secretCredential(emu.getSecret('delta', secretName))).toEqual(second);
  });
});

describe('zkleader tenant add on an open namespace', () => {
  const root = '/t-open';

  it('takes it over: what anyone made below it goes (an open-mode member, a squatter), and the namespace node is the tenant\'s alone', async () => {
    // An open-mode member (no credential) made these: world-open, under an open root.
    const old = new LeaderElection({
      connectString: ensemble.connectString,
      sessionTimeoutMs: 6000,
      electionPath: `${root}/legacy/orders`,
      self: { pod: 'orders-old', ip: null, uid: null, namespace: 'legacy', startedAt: new Date().toISOString() },
      logger: pino({ level: 'silent' }),
    });
    elections.push(old);
    const joined = new Promise<ElectionSnapshot>((resolve) => old.on('update', (s) => s.state !== 'unknown' && resolve(s)));
    old.start();
    await joined;
    const anonymous = await open();
    await anonymous.ensurePath(`${root}/legacy/_config/app`);
    const before = await treeAcls(`${root}/legacy`);
    expect(Object.keys(before)).toHaveLength(5);
    expect(Object.values(before).every((acl) => acl.join() === `world:anyone:${Perms.ALL}`)).toBe(true);

    const { code: exit, stdout, stderr } = await tenant('add', ['legacy'], root);
    expect([exit, stderr]).toEqual([0, '']);
    expect(stdout).toContain(`root ${root} locked: from now on only the admin creates namespaces under it`);
    // At least the 5 nodes above (the open-mode member may make its node again while they go).
    const removed = Number(new RegExp(`namespace legacy taken over: removed the (\\d+) nodes of ${root}/legacy made without the tenant's ACL`).exec(stdout)?.[1]);
    expect(removed).toBeGreaterThanOrEqual(5);
    const credential = secretCredential(emu.getSecret('legacy', secretName));
    // A live ephemeral "candidate" of anyone would lead the tenant's election: nothing of theirs stays.
    expect(await treeAcls(`${root}/legacy`)).toEqual({ [`${root}/legacy`]: only(credential) });
    expect(await resultCode(anonymous.create(`${root}/legacy/orders`, '', 'persistent'))).toBe('NOAUTH');
    expect(await resultCode(anonymous.create(`${root}/squat`, '', 'persistent'))).toBe('NOAUTH');
  });
});

describe('zkleader tenant add on a squatted namespace (before the root was locked)', () => {
  it("takes over a node that looks like a tenant's (anyone can authenticate as zkleader-<ns> with a password of their own), removing the squatter's live candidate", async () => {
    const root = '/t-squat';
    const squatter = await open({ user: 'zkleader-victim', password: 'attacker-chosen' });
    await squatter.ensurePath(`${root}/victim/orders`, creatorAllAcl);
    const fake = await squatter.create(`${root}/victim/orders/${'0'.repeat(8)}-n_`, JSON.stringify({ pod: 'evil-pod', ip: '6.6.6.6' }), 'ephemeral-sequential', creatorAllAcl);
    const { code: exit, stdout, stderr } = await tenant('add', ['victim'], root);
    expect([exit, stderr]).toEqual([0, '']);
    expect(stdout).toMatch(/namespace victim taken over: removed the \d+ nodes of \/t-squat\/victim/);
    const admin = await open(testAdminCredential);
    expect(await admin.exists(fake)).toBeNull();
    const credential = secretCredential(emu.getSecret('victim', secretName));
    expect(await treeAcls(`${root}/victim`)).toEqual({ [`${root}/victim`]: only(credential) });
    expect(await resultCode(squatter.create(`${root}/victim/orders`, '', 'persistent'))).toBe('NOAUTH');
  });

  it('a squatter refilling an open namespace as fast as it can does not keep it from being taken over', async () => {
    const root = '/t-refill';
    const squatter = await open();
    await squatter.ensurePath(`${root}/victim2`);
    let stop = false;
    let created = 0;
    const refill = (async () => {
      while (!stop) {
        try {
          await squatter.create(`${root}/victim2/s-`, '', 'ephemeral-sequential');
          created++;
        } catch {
          return;
        }
      }
    })();
    while (created < 50) await new Promise((r) => setTimeout(r, 10));
    const result = await tenant('add', ['victim2'], root);
    stop = true;
    await refill;
    expect([result.code, result.stderr]).toEqual([0, '']);
    const admin = await open(testAdminCredential);
    expect(await admin.getChildren(`${root}/victim2`)).toEqual([]);
  }, 60_000);
});

describe('zkleader tenant add -o yaml', () => {
  const root = '/t-yaml';
  let manifest = '';

  it('prints a Secret manifest that parses and holds a credential the tenant accepts, and writes nothing to the API', async () => {
    const since = emu.requests.length;
    const { code: exit, stdout, stderr } = await tenant('add', ['gamma', '-o', 'yaml'], root, false);
    expect(exit).toBe(0);
    manifest = stdout;
    const secret = parseYaml(stdout) as V1Secret;
    expect(secret).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secretName, namespace: 'gamma', labels: { 'app.kubernetes.io/managed-by': 'zkleader' } },
      type: 'Opaque',
    });
    expect(Object.keys(secret.data ?? {})).toEqual(['credential']);
    const credential = secretCredential(secret);
    expect(credential.user).toBe('zkleader-gamma');
    expect(await treeAcls(`${root}/gamma`)).toEqual({ [`${root}/gamma`]: only(credential) });
    expect(emu.requests.length).toBe(since);
    expect(stderr).toContain('Secret gamma/zkleader-zookeeper with the credential of zkleader-gamma printed on stdout');
    expect(stderr).not.toContain(credential.password);
  });

  it('on an existing tenant, exits 1 without --credential-file: the password cannot be recovered', async () => {
    const { code: exit, stdout, stderr } = await tenant('add', ['gamma', '-o', 'yaml'], root, false);
    expect([exit, stdout]).toEqual([1, '']);
    expect(stderr).toBe(
      "zkleader tenant add: tenant gamma exists and the tenant's password cannot be recovered (ZooKeeper holds only its hash): give the current credential with --credential-file to print its Secret again, or --rotate for a new password (the current one keeps working until --retire-old)\n",
    );
  });

  it('prints the same manifest again with --credential-file, and refuses a credential the tenant does not accept', async () => {
    const file = join(dir, 'gamma');
    writeFileSync(file, `${formatCredential(secretCredential(parseYaml(manifest) as V1Secret))}\n`);
    const again = await tenant('add', ['gamma', '-o', 'yaml', '--credential-file', file], root, false);
    expect([again.code, again.stdout]).toEqual([0, manifest]);
    expect(again.stderr).toContain('nothing changed');

    const wrong = join(dir, 'gamma-wrong');
    writeFileSync(wrong, 'zkleader-gamma:not-the-password');
    const refused = await tenant('add', ['gamma', '-o', 'yaml', '--credential-file', wrong], root, false);
    expect([refused.code, refused.stdout]).toEqual([1, '']);
    expect(refused.stderr).toContain(`the credential in --credential-file ${wrong} is not one tenant gamma accepts`);
  });
});

describe('zkleader tenant: errors', () => {
  const root = '/t-errors';

  it('a wrong admin password: exit 1 naming the superuser setting, and nothing changed (the root not even created)', async () => {
    const wrong = join(dir, 'admin-wrong');
    writeFileSync(wrong, 'admin:not-the-superuser');
    const result = await zkleader(['tenant', 'add', 'alpha', '--zookeeper', ensemble.connectString, '--admin-credential-file', wrong, '--root', root, '-o', 'yaml']);
    expect([result.code, result.stdout]).toEqual([1, '']);
    expect(result.stderr).toBe(
      `zkleader tenant add: the admin credential is not the ensemble's superuser (zookeeper.DigestAuthenticationProvider.superDigest): user "admin" from --admin-credential-file ${wrong}\n`,
    );
    expect(await admin.exists(root)).toBeNull();
    for (const sub of [['list'], ['remove', 'alpha', '--keep-secret']]) {
      const other = await zkleader(['tenant', ...sub, '--zookeeper', ensemble.connectString, '--admin-credential-file', wrong]);
      expect([sub[0], other.code, other.stderr]).toEqual([sub[0], 1, expect.stringContaining("is not the ensemble's superuser")]);
    }
  });

  it.each([
    ['a missing admin credential file', ['--admin-credential-file', '/nonexistent/admin', 'a'], '--admin-credential-file: credential file /nonexistent/admin does not exist'],
    ['no admin credential file', [], '--admin-credential-file is required'],
    ['a bad namespace', ['--admin-credential-file', '@admin', 'Shop'], 'NAMESPACE: expected a DNS-1123 label'],
    ['an underscore namespace', ['--admin-credential-file', '@admin', '_config'], 'NAMESPACE: expected a DNS-1123 label'],
    ['no namespace', ['--admin-credential-file', '@admin'], 'NAMESPACE is required'],
    ['two namespaces', ['--admin-credential-file', '@admin', 'a', 'b'], 'one NAMESPACE only'],
    ['--rotate with --retire-old', ['--admin-credential-file', '@admin', 'a', '--rotate', '--retire-old'], '--rotate and --retire-old are two steps'],
    ['-o json', ['--admin-credential-file', '@admin', 'a', '-o', 'json'], '--output: expected yaml'],
    ['--credential-file without -o yaml', ['--admin-credential-file', '@admin', 'a', '--credential-file', '@admin', '--kubeconfig', '@kubeconfig'], '--credential-file goes with -o yaml'],
    ['--retire-old -o yaml without --credential-file', ['--admin-credential-file', '@admin', 'a', '--retire-old', '-o', 'yaml'], '--retire-old with -o yaml needs --credential-file'],
    ['no kubeconfig outside a cluster', ['--admin-credential-file', '@admin', 'a'], '--kubeconfig is required outside a cluster'],
    ['a kubeconfig that does not exist', ['--admin-credential-file', '@admin', 'a', '--kubeconfig', '/nonexistent/kubeconfig'], '--kubeconfig: cannot load /nonexistent/kubeconfig: no such file'],
    ["another user's --credential-file", ['--admin-credential-file', '@admin', 'a', '-o', 'yaml', '--credential-file', '@admin'], '--credential-file: the credential is user "admin"\'s; the members of namespace a are zkleader-a'],
  ])('add with %s exits 2 with one line naming it', async (_what, args, message) => {
    const resolved = args.map((a) => (a === '@admin' ? adminFile : a === '@kubeconfig' ? kubeconfig : a));
    const { code: exit, stdout, stderr } = await zkleader(['tenant', 'add', '--zookeeper', ensemble.connectString, '--root', root, ...resolved]);
    expect([exit, stdout]).toEqual([2, '']);
    expect(stderr.startsWith('zkleader tenant add: ')).toBe(true);
    expect(stderr).toContain(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(await admin.exists(root)).toBeNull();
  });

  it('a malformed admin credential file exits 2 naming the flag, never echoing its content', async () => {
    const bad = join(dir, 'admin-bad');
    writeFileSync(bad, 'no-colon-secret-text');
    const { code: exit, stderr } = await zkleader(['tenant', 'list', '--zookeeper', ensemble.connectString, '--admin-credential-file', bad]);
    expect([exit, stderr]).toEqual([2, `zkleader tenant list: --admin-credential-file: credential file ${bad}: expected "user:password", found no ":"\n`]);
  });

  it('an unreachable ZooKeeper exits 1 naming the connect string', async () => {
    const [port] = await reserveLoopbackPorts(1);
    try {
      const { code: exit, stderr } = await zkleader(['tenant', 'list', '--zookeeper', `127.0.0.1:${port}`, '--admin-credential-file', adminFile, '--timeout', '1s']);
      expect([exit, stderr]).toEqual([1, `zkleader tenant list: no ZooKeeper session with 127.0.0.1:${port} within 1s\n`]);
    } finally {
      releaseLoopbackPorts([port as number]);
    }
  });

  it('a chroot that does not exist exits 1 naming it', async () => {
    const { code: exit, stderr } = await zkleader(['tenant', 'list', '--zookeeper', `${ensemble.connectString}/no-such-chroot`, '--admin-credential-file', adminFile]);
    expect([exit, stderr]).toEqual([1, 'zkleader tenant list: the chroot /no-such-chroot of --zookeeper does not exist in ZooKeeper; create it first\n']);
  });

  it('unknown and missing subcommands exit 2; --help works on the command and every subcommand', async () => {
    expect(await zkleader(['tenant', 'frobnicate'])).toEqual({ code: 2, stdout: '', stderr: 'zkleader tenant: unknown subcommand "frobnicate"; expected add, list, remove\n' });
    const bare = await zkleader(['tenant']);
    expect([bare.code, bare.stderr]).toEqual([2, expect.stringContaining('Usage: zkleader tenant <add|list|remove>')]);
    const help = await zkleader(['tenant', '--help']);
    expect([help.code, help.stdout]).toEqual([0, expect.stringMatching(/Subcommands:\n {2}add {4}.*\n {2}list {3}.*\n {2}remove {2}/)]);
    for (const sub of ['add', 'list', 'remove']) {
      const { code: exit, stdout } = await zkleader(['tenant', sub, '--help']);
      expect([sub, exit]).toEqual([sub, 0]);
      expect(stdout).toContain(`Usage: zkleader tenant ${sub}`);
      expect(stdout).toContain('--admin-credential-file F');
      expect(stdout).toContain('[env ZKLEADER_ADMIN_CREDENTIAL_FILE]');
    }
    expect((await zkleader(['tenant', 'add', '--help'])).stdout).toContain('--retire-old');
    expect((await zkleader(['--help'])).stdout).toMatch(/^ {2}tenant {2,}manage tenants/m);
  });
});

describe('zkleader tenant list', () => {
  const root = '/t-list';

  it('shows each namespace with its mode, how many passwords its ACL accepts, and its elections (flags from the environment)', async () => {
    // An open namespace first, made by an anonymous member before the root is locked.
    const anonymous = await open();
    await anonymous.ensurePath(`${root}/old/reports`);
    expect((await tenant('add', ['one'], root)).code).toBe(0);
    expect((await tenant('add', ['two'], root)).code).toBe(0);
    const two = await open(secretCredential(emu.getSecret('two', secretName)));
    await two.ensurePath(`${root}/two/orders`, creatorAllAcl);
    await two.ensurePath(`${root}/two/_config/app`, creatorAllAcl);
    expect((await tenant('add', ['two', '--rotate'], root)).code).toBe(0);

    const env = { ZKLEADER_ZOOKEEPER: ensemble.connectString, ZKLEADER_ADMIN_CREDENTIAL_FILE: adminFile, ZKLEADER_ROOT: root };
    const json = await zkleader(['tenant', 'list', '-o', 'json'], env);
    expect([json.code, json.stderr]).toEqual([0, '']);
    expect(JSON.parse(json.stdout)).toEqual({
      root,
      tenants: [
        { namespace: 'old', mode: 'open', ids: 0, elections: ['reports'] },
        { namespace: 'one', mode: 'tenant', ids: 1, elections: [] },
        { namespace: 'two', mode: 'tenant', ids: 2, elections: ['orders'] },
      ],
    });
    const table = await zkleader(['tenant', 'list'], env);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n').map((l) => l.split(/\s+/).filter(Boolean))).toEqual([
      ['NAMESPACE', 'MODE', 'IDS', 'ELECTIONS'],
      ['old', 'open', '0', 'reports'],
      ['one', 'tenant', '1', '-'],
      ['two', 'tenant', '2', 'orders'],
      [],
    ]);
  });
});

describe('zkleader tenant remove', () => {
  const root = '/t-remove';

  it('refuses while members are in its elections, listing them; --force removes the tree and the Secret', async () => {
    expect((await tenant('add', ['shop'], root)).code).toBe(0);
    const credentialFile = join(dir, 'shop');
    writeFileSync(credentialFile, formatCredential(secretCredential(emu.getSecret('shop', secretName))));
    const member = new LeaderElection({
      connectString: ensemble.connectString,
      sessionTimeoutMs: 6000,
      electionPath: `${root}/shop/orders`,
      self: { pod: 'orders-a', ip: null, uid: null, namespace: 'shop', startedAt: new Date().toISOString() },
      logger: pino({ level: 'silent' }),
      credential: () => readCredentialFile(credentialFile),
    });
    elections.push(member);
    const states: string[] = [];
    member.on('update', (snapshot) => states.push(snapshot.state));
    const leading = new Promise<void>((resolve) => member.on('update', (s) => s.isLeader && resolve()));
    member.start();
    await leading;
    const [node] = await admin.getChildren(`${root}/shop/orders`);

    const refused = await tenant('remove', ['shop'], root);
    expect([refused.code, refused.stdout]).toEqual([1, '']);
    expect(refused.stderr).toBe(`zkleader tenant remove: namespace shop has 1 live candidate(s): orders/${node} (pod orders-a); stop those members first, or --force\n`);
    expect(await admin.exists(`${root}/shop/orders/${node}`)).not.toBeNull();
    expect(emu.getSecret('shop', secretName)).toBeDefined();

    const forced = await tenant('remove', ['shop', '--force'], root);
    expect([forced.code, forced.stderr]).toEqual([0, '']);
    // 3 nodes (tenant, election, candidate), or more when the member joined again while the tree was emptied.
    expect(forced.stdout.split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^tenant shop removed: \\d+ node\\(s\\) under ${root}/shop deleted$`)),
      `1 live candidate(s) removed: orders/${node} (pod orders-a); their members lose the election and cannot rejoin until the tenant is added again`,
      'Secret shop/zkleader-zookeeper deleted',
      '',
    ]);
    expect(Number(/removed: (\d+)/.exec(forced.stdout)?.[1])).toBeGreaterThanOrEqual(3);
    expect(await admin.exists(`${root}/shop`)).toBeNull();
    expect(emu.getSecret('shop', secretName)).toBeUndefined();
    // The member steps down and the namespace does not come back (only the admin creates one).
    await until('the member steps down', () => states.at(-1) === 'unknown');
    await new Promise((r) => setTimeout(r, 2000));
    expect(states.at(-1)).toBe('unknown');
    expect(await admin.exists(`${root}/shop`)).toBeNull();

    const again = await tenant('remove', ['shop'], root);
    expect([again.code, again.stdout]).toEqual([0, `no tenant shop under ${root}\nno Secret shop/zkleader-zookeeper\n`]);
  });

  it('removes a tenant without live candidates without --force; --keep-secret leaves the Secret and the API alone', async () => {
    expect((await tenant('add', ['quiet'], root)).code).toBe(0);
    const member = await open(secretCredential(emu.getSecret('quiet', secretName)));
    await member.ensurePath(`${root}/quiet/orders`, creatorAllAcl);
    await member.ensurePath(`${root}/quiet/_locks/nightly`, creatorAllAcl);
    const since = emu.requests.length;
    const { code: exit, stdout, stderr } = await tenant('remove', ['quiet', '--keep-secret'], root, false);
    expect([exit, stderr, stdout]).toEqual([0, '', `tenant quiet removed: 4 node(s) under ${root}/quiet deleted\n`]);
    expect(await admin.exists(`${root}/quiet`)).toBeNull();
    expect(emu.requests.length).toBe(since);
    expect(emu.getSecret('quiet', secretName)).toBeDefined();
  });
});
