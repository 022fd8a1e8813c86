import { afterAll, describe, expect, it } from '@jest/globals';
import type { V1Deployment } from '@kubernetes/client-node';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderKustomization } from '../support/kustomize.js';
import { repoRoot } from '../support/repoRoot.js';

const deployment = renderKustomization(join(repoRoot, 'deploy', 'example')).find((o) => o.kind === 'Deployment') as unknown as V1Deployment;
const app = deployment.spec?.template.spec?.containers.find((c) => c.name === 'app');

// A new PID namespace needs root (CI runs as root); elsewhere the test says why it is skipped.
const isRoot = process.getuid?.() === 0;
const stubs = mkdtempSync(join(tmpdir(), 'zkleader-example-app-'));
afterAll(() => rmSync(stubs, { recursive: true, force: true }));

/**
 * The busybox image is not here: dash runs the script, and httpd is a stand-in that
 * serves nothing but behaves like busybox's: in the foreground with -f, else it daemonizes.
 */
function stubHttpd(): void {
  const path = join(stubs, 'httpd');
  writeFileSync(path, '#!/bin/sh\ncase " $* " in *" -f "*) exec sleep 1000 ;; esac\nsleep 1000 >/dev/null 2>&1 &\n');
  chmodSync(path, 0o755);
}

function exited(child: ChildProcess, withinMs: number): Promise<number | 'running'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('running'), withinMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

/** The host pid of PID 1 in the namespace `unshare --fork` made: its only child. */
function namespaceInit(unsharePid: number): number {
  for (let i = 0; i < 50; i += 1) {
    const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(unsharePid)], { encoding: 'utf8' }).trim();
    if (out !== '') return Number(out.split('\n')[0]);
    execFileSync('sleep', ['0.1']);
  }
  throw new Error('unshare started no child');
}

describe('the example app (deploy/example)', () => {
  (isRoot ? it : it.skip)('exits promptly on SIGTERM as PID 1, so the sidecar can hand leadership over without waiting out the grace period', async () => {
    expect(app?.command?.slice(0, 2)).toEqual(['sh', '-c']);
    const script = app?.command?.[2] ?? '';
    stubHttpd();
    // The script as the container's PID 1 (a PID 1 ignores signals it does not handle).
    const child = spawn('unshare', ['--pid', '--fork', '--kill-child', 'sh', '-c', script], {
      env: { PATH: `${stubs}:${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let output = '';
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      // Running: it printed its first line and is sleeping in its loop.
      for (let i = 0; i < 100 && !output.includes('leader='); i += 1) await new Promise((r) => setTimeout(r, 100));
      expect(output).toContain('leader=');
      process.kill(namespaceInit(child.pid ?? 0), 'SIGTERM');
      // The kubelet would wait 30 s; 5 s is generous for a shell that handles the signal.
      expect(await exited(child, 5_000)).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 20_000);
});
