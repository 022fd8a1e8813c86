import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot } from '../support/repoRoot.js';

// The image's dependency stage, done here without a container engine: the Dockerfile's
// install command on package.json and the lockfile alone (from the cache the set-up
// filled where it can), then the built CLI run on nothing but those production modules. It
// catches a runtime import of a devDependency and a lockfile npm cannot install.

let dir: string;
const nodeDir = dirname(dirname(process.execPath));

// The environment without npm's own (jest runs under `npm test`, whose npm_config_* would
// steer the nested npm); the rest stays, a CA bundle or a proxy the registry needs included.
const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));

function run(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { cwd: options.cwd, env: { ...inherited, ...options.env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zkleader-image-'));
  await cp(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  await cp(join(repoRoot, 'package-lock.json'), join(dir, 'package-lock.json'));
  await cp(join(repoRoot, 'patches'), join(dir, 'patches'), { recursive: true });
  await cp(join(repoRoot, 'dist'), join(dir, 'dist'), { recursive: true });
}, 30_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the image, built without a container engine', () => {
  it('installs the production dependencies with the Dockerfile commands and builds the patched native addon', async () => {
    const dockerfile = await readFile(join(repoRoot, 'Dockerfile'), 'utf8');
    const step = /RUN npm_config_nodedir=\/usr\/local (npm ci [^\\\n]+)\\\n && (npm prune [^\\\n]+)\\\n/.exec(dockerfile);
    expect([step?.[1]?.trim(), step?.[2]?.trim()]).toEqual(['npm ci --no-audit --no-fund', 'npm prune --omit=dev --no-audit --no-fund']);
    expect(dockerfile).toContain('COPY patches ./patches');
    for (const command of [step?.[1], step?.[2]] as string[]) {
      const args = [...command.trim().split(' ').slice(1), '--prefer-offline'];
      const npm = await run('npm', args, { cwd: dir, env: { npm_config_nodedir: nodeDir } });
      expect([command, npm.code, npm.stderr.split('\n').filter((l) => /ERR/.test(l))]).toEqual([command, 0, []]);
    }
    expect(existsSync(join(dir, 'node_modules', 'zookeeper', 'build', 'Release', 'zookeeper.node'))).toBe(true);
    // npm ci installs what the lockfile records and leaves it as committed (issue 15: npm
    // install used to add other platforms' optional entries to it).
    expect(await readFile(join(dir, 'package-lock.json'), 'utf8')).toBe(await readFile(join(repoRoot, 'package-lock.json'), 'utf8'));
    // The postinstall step patched the binding's source before the addon was rebuilt.
    const source = join(dir, 'node_modules', 'zookeeper', 'src', 'node-zk.cpp');
    expect(await readFile(source, 'utf8')).toContain('zkleader patch');
    expect(statSync(join(dir, 'node_modules', 'zookeeper', 'build', 'Release', 'zookeeper.node')).mtimeMs).toBeGreaterThanOrEqual(statSync(source).mtimeMs);
    const installed = JSON.parse((await run('npm', ['ls', '--omit=dev', '--depth=0', '--json'], { cwd: dir })).stdout) as { dependencies: Record<string, unknown> };
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(Object.keys(installed.dependencies).sort()).toEqual(Object.keys(pkg.dependencies).sort());
    // Type packages may come along as dependencies of dependencies (client-node lists @types/node); tools must not.
    const tools = Object.keys(pkg.devDependencies).filter((name) => !name.startsWith('@types/'));
    expect(tools).toContain('typescript');
    for (const dev of tools) expect([dev, existsSync(join(dir, 'node_modules', dev, 'package.json'))]).toEqual([dev, false]);
  }, 600_000);

  it('runs every command on the production modules alone', async () => {
    const cli = join(dir, 'dist', 'cli', 'zkleader.js');
    const help = await run(process.execPath, [cli, '--help'], { cwd: dir });
    expect(help.code).toBe(0);
    const names = [...help.stdout.matchAll(/^ {2}(\w+) {2,}/gm)].map((m) => m[1] as string);
    expect(names).toEqual(['sidecar', 'status', 'webhook', 'inject', 'certs', 'tenant', 'config', 'lock']);
    for (const name of names) expect([name, (await run(process.execPath, [cli, name, '--help'], { cwd: dir })).code]).toEqual([name, 0]);

    // Beyond loading: inject (yaml, the injector) and certs (node-forge) do real work.
    const manifest = await readFile(join(repoRoot, 'test', 'golden', 'inject', 'bare-pod.yaml'), 'utf8');
    const injected = await run(process.execPath, [cli, 'inject', '-f', '-', '--config', join(repoRoot, 'test', 'golden', 'inject', 'webhook-config.yaml')], { cwd: dir, input: manifest });
    expect(injected.code).toBe(0);
    expect(injected.stdout).toBe(await readFile(join(repoRoot, 'test', 'golden', 'inject', 'bare-pod.injected.yaml'), 'utf8'));
    const certs = await run(process.execPath, [cli, 'certs', '--service', 'zkleader-webhook', '--namespace', 'zkleader-system', '--out', join(dir, 'certs')], { cwd: dir });
    expect([certs.code, certs.stderr]).toEqual([0, '']);
  }, 60_000);
});
