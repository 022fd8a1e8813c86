import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/repoRoot.js';

// scripts/setup.sh (issue 15): the npm dependencies come from `npm ci`, and the set-up never
// leaves a clone changed; if anything it runs rewrites a tracked file, it fails and names it.
// The real script in a checkout of our own, with the project's Node and a fake npm.

let dir: string;
let log: string;

/** A fake npm that logs its arguments and "installs" the addon; `rewrite` also edits the lockfile, as npm install did. */
function fakeNpm(rewrite: boolean): void {
  writeFileSync(
    join(dir, 'bin', 'npm'),
    [
      '#!/bin/sh',
      `echo "$*" >> '${log}'`,
      'mkdir -p node_modules/zookeeper/build/Release && touch node_modules/zookeeper/build/Release/zookeeper.node',
      ...(rewrite ? ['echo \'{"lockfileVersion": 3, "packages": {"node_modules/@swc/core-darwin-arm64": {}}}\' > package-lock.json'] : []),
      '',
    ].join('\n'),
  );
  chmodSync(join(dir, 'bin', 'npm'), 0o755);
}

function setup(what: string) {
  return spawnSync(join(dir, 'scripts', 'setup.sh'), [what], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${join(dir, 'bin')}:/usr/bin:/bin` },
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'zkleader-setup-'));
  log = join(dir, 'npm.log');
  mkdirSync(join(dir, 'scripts'));
  for (const script of ['setup.sh', 'tracked-state.sh']) {
    copyFileSync(join(repoRoot, 'scripts', script), join(dir, 'scripts', script));
    chmodSync(join(dir, 'scripts', script), 0o755);
  }
  // The project's Node where the set-up puts it, so it fetches none.
  mkdirSync(join(dir, '.tools', 'node', 'bin'), { recursive: true });
  symlinkSync(process.execPath, join(dir, '.tools', 'node', 'bin', 'node'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'package.json'), '{"name": "fake"}\n');
  writeFileSync(join(dir, 'package-lock.json'), '{"lockfileVersion": 3, "packages": {}}\n');
  writeFileSync(join(dir, '.gitignore'), 'node_modules/\n.tools/\nnpm.log\nbin/\n');
  const git = (...args: string[]) => spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir, encoding: 'utf8' });
  git('init', '-q');
  git('add', '.');
  git('commit', '-q', '-m', 'clone');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('scripts/setup.sh', () => {
  it('installs the npm dependencies with npm ci, once, and leaves the clone as it was', () => {
    fakeNpm(false);
    const first = setup('build');
    expect([first.status, first.stderr]).toEqual([0, expect.stringContaining('installing npm dependencies')]);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['ci --no-audit --no-fund --loglevel=error']);
    expect(readFileSync(join(dir, 'node_modules', '.zkleader-installed'), 'utf8').trim()).toBe(process.version);
    // Idempotent: the stamp is newer than the lockfile, so a second run installs nothing.
    expect(setup('build').status).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(spawnSync('git', ['status', '--porcelain'], { cwd: dir, encoding: 'utf8' }).stdout).toBe('');
  });

  it('fails, naming the file, when an install step rewrites a tracked file', () => {
    fakeNpm(true);
    const run = setup('build');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('the set-up changed tracked files');
    expect(run.stderr).toContain('package-lock.json');
  });

  it('does not blame the set-up for changes that were there before it ran', () => {
    fakeNpm(false);
    writeFileSync(join(dir, 'package.json'), '{"name": "fake", "version": "2.0.0"}\n');
    const run = setup('build');
    expect([run.status, run.stderr]).toEqual([0, expect.not.stringContaining('changed tracked files')]);
    expect(existsSync(join(dir, 'node_modules', '.zkleader-installed'))).toBe(true);
  });

  it('refuses a step it does not know, naming the ones it does', () => {
    const run = setup('everything');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('usage: setup.sh [node|build|all|bench]');
  });
});
