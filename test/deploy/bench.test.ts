import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../support/repoRoot.js';

// `make bench` and `npm run bench:*` (issue 15): the benchmarks run on the project's Node,
// and an older Node gets a message instead of a crash. The benchmarks themselves never run here.

const packageJson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const benchScripts = Object.keys(packageJson.scripts).filter((name) => name.startsWith('bench:'));
const checkNode = 'node scripts/check-node.mjs && ';

/** The environment of a child `make`, without what a `make test` around jest would pass down. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const name of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES']) delete env[name];
  return env;
}

describe('the bench:* scripts of package.json', () => {
  it('are all there, each checking the Node first', () => {
    expect(benchScripts).toEqual(expect.arrayContaining(['bench:sidecar', 'bench:config', 'bench:webhook', 'bench:webhook-hostile', 'bench:nemesis']));
    for (const name of benchScripts) expect([name, packageJson.scripts[name]?.startsWith(checkNode)]).toEqual([name, true]);
  });
});

describe('scripts/check-node.mjs', () => {
  let dir: string;
  let script: string;
  beforeAll(() => {
    // A copy beside a node_modules stamp of our own, as scripts/setup.sh writes it.
    dir = mkdtempSync(join(tmpdir(), 'zkleader-check-node-'));
    mkdirSync(join(dir, 'scripts'));
    mkdirSync(join(dir, 'node_modules'));
    script = join(dir, 'scripts', 'check-node.mjs');
    copyFileSync(join(repoRoot, 'scripts', 'check-node.mjs'), script);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the check in a Node that says it is `version`, as `npm run bench:sidecar` would. */
  function check(version: string | undefined, stamp: string | undefined) {
    if (stamp === undefined) rmSync(join(dir, 'node_modules', '.zkleader-installed'), { force: true });
    else writeFileSync(join(dir, 'node_modules', '.zkleader-installed'), `${stamp}\n`);
    const fake = version === undefined ? '' : `Object.defineProperty(process.versions, 'node', { value: ${JSON.stringify(version)} }); `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', `${fake}await import(${JSON.stringify(pathToFileURL(script).href)});`], {
      encoding: 'utf8',
      env: { ...process.env, npm_lifecycle_event: 'bench:sidecar' },
    });
    return { status: run.status, stderr: run.stderr };
  }

  it('refuses Node 20 (the machine’s /usr/bin/node) with a message that says what to run instead', () => {
    const { status, stderr } = check('20.20.2', undefined);
    expect(status).toBe(1);
    expect(stderr).toContain('npm run bench:sidecar: needs Node 22 or newer');
    expect(stderr).toContain('this is Node v20.20.2');
    expect(stderr).toContain('make bench');
    expect(stderr).toContain(`${dir}/.tools/node/bin`);
    expect(check('18.0.0', 'v24.22.3').status).toBe(1);
  });

  it('refuses a Node of another major version than the one node_modules (the zookeeper addon) was installed for', () => {
    const { status, stderr } = check('22.11.0', 'v24.22.3');
    expect(status).toBe(1);
    expect(stderr).toContain('node_modules was installed for Node v24.22.3');
    expect(stderr).toContain('make bench');
  });

  it('lets the project’s Node through, silently', () => {
    expect(check('24.1.0', 'v24.22.3')).toEqual({ status: 0, stderr: '' });
    expect(check('22.11.0', undefined)).toEqual({ status: 0, stderr: '' });
    expect(check(undefined, process.version)).toEqual({ status: 0, stderr: '' });
  });
});

describe('make bench', () => {
  const makefile = readFileSync(join(repoRoot, 'Makefile'), 'utf8');
  const recipe = /\nbench:\n((?:\t.*\n)+)/.exec(makefile)?.[1] ?? '';

  it('is a target that names no bench itself: the list is package.json’s', () => {
    expect(recipe).toContain("startsWith('bench:')");
    for (const name of benchScripts) expect(recipe).not.toContain(name);
    expect(makefile).toMatch(/^\.PHONY:.*\bbench\b/m);
  });

  let dir: string;
  let log: string;
  beforeAll(() => {
    // The real Makefile in a checkout of our own: set-up a no-op, npm a fake that logs what it
    // is asked to run and prints a section (bench:b fails after printing part of one; bench:c
    // changes a tracked file, which no bench may do unnoticed).
    dir = mkdtempSync(join(tmpdir(), 'zkleader-make-bench-'));
    log = join(dir, 'npm.log');
    copyFileSync(join(repoRoot, 'Makefile'), join(dir, 'Makefile'));
    mkdirSync(join(dir, 'scripts'));
    writeFileSync(join(dir, 'scripts', 'setup.sh'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(dir, 'scripts', 'setup.sh'), 0o755);
    copyFileSync(join(repoRoot, 'scripts', 'tracked-state.sh'), join(dir, 'scripts', 'tracked-state.sh'));
    chmodSync(join(dir, 'scripts', 'tracked-state.sh'), 0o755);
    const scripts = { build: 'x', 'bench:a': 'x', test: 'x', 'bench:b': 'x', 'bench:c': 'x', 'bench-not': 'x' };
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fake', type: 'module', scripts }));
    writeFileSync(join(dir, 'tracked.txt'), 'as committed\n');
    mkdirSync(join(dir, 'bin'));
    writeFileSync(
      join(dir, 'bin', 'npm'),
      [
        '#!/bin/sh',
        '[ "$1 $2" = "run --silent" ] || { echo "unexpected npm $*" >&2; exit 9; }',
        `echo "$3" >> '${log}'`,
        'echo "## section of $3"',
        'case "$3" in bench:b) exit 3 ;; bench:c) echo changed >> tracked.txt ;; esac',
        '',
      ].join('\n'),
    );
    chmodSync(join(dir, 'bin', 'npm'), 0o755);
    const git = (...args: string[]) => spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir, encoding: 'utf8' });
    git('init', '-q');
    git('add', 'tracked.txt');
    git('commit', '-q', '-m', 'tracked');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every bench:* script of package.json in turn, keeps going past a failure, and says where each result went', () => {
    const run = spawnSync('make', ['-s', 'bench'], {
      cwd: dir,
      encoding: 'utf8',
      env: childEnv({ PATH: `${join(dir, 'bin')}:${dirname(process.execPath)}:/usr/bin:/bin` }),
    });
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['bench:a', 'bench:b', 'bench:c']);
    expect(run.status).not.toBe(0);
    expect(run.stdout).toBe('## section of bench:a\n## section of bench:b\n## section of bench:c\n');
    for (const name of ['a', 'b', 'c']) {
      expect(readFileSync(join(dir, 'test-results', 'bench', `${name}.md`), 'utf8')).toBe(`## section of bench:${name}\n`);
      expect(run.stderr).toContain(`[bench] npm run bench:${name} > test-results/bench/${name}.md`);
    }
    expect(run.stderr).toContain('[bench] results (Markdown sections for bench/RESULTS.md): test-results/bench/a.md test-results/bench/c.md');
    expect(run.stderr).toContain('[bench] failed: bench:b');
    expect(run.stderr).toContain('[bench] tracked files changed during the run');
    expect(run.stderr).toContain('tracked.txt');
  });
});
