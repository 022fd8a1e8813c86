import { afterEach, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { releaseLoopbackPorts, reserveLoopbackPorts } from '../support/loopbackPorts.js';
import { SidecarProcess } from '../support/sidecarProcess.js';

const zkleader = join(import.meta.dirname, '..', '..', 'bin', 'zkleader');
const run = promisify(execFile);

async function exitOf(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string; stdout: string }> {
  try {
    const { stdout, stderr } = await run(zkleader, args, { env: { PATH: process.env.PATH, ...env }, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const good = ['sidecar', '--zookeeper', '127.0.0.1:1', '--election', 'orders', '--namespace', 'shop', '--pod-name', 'orders-0', '--no-label'];

describe('zkleader sidecar command line', () => {
  it.each([
    [[...good, '--election', 'Orders'], {}, '--election: expected a DNS-1123 label'],
    [[...good, '--session-timeout', '2s'], {}, '--session-timeout: expected a duration from 4s to 40s, got "2s"'],
    [[...good, '--bogus'], {}, 'unknown flag --bogus'],
    [good.filter((a) => a !== '--pod-name' && a !== 'orders-0'), {}, '--pod-name is required'],
    [good.filter((a) => a !== '--namespace' && a !== 'shop'), { POD_NAMESPACE: 'Shop' }, '--namespace (from POD_NAMESPACE): expected a DNS-1123 label'],
  ])('%j with env %j exits 2 with one line naming the flag', async (args, env, message) => {
    const { code, stderr, stdout } = await exitOf(args, env);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(`zkleader sidecar: ${message}`);
  });

  it('--help lists every contract flag with its environment names', async () => {
    const { code, stdout } = await exitOf(['sidecar', '--help']);
    expect(code).toBe(0);
    for (const text of ['--zookeeper', '--election', 'POD_NAMESPACE', 'POD_NAME', 'POD_UID', 'POD_IP', '--dir', '(default 10s)', '--root', '--no-label', '--kubeconfig', '(default [::]:4040)']) {
      expect(stdout).toContain(text);
    }
  });
});

describe('zkleader sidecar with ZooKeeper unreachable at start', () => {
  let sidecar: SidecarProcess | undefined;
  let ports: number[] = [];
  afterEach(async () => {
    await sidecar?.close();
    releaseLoopbackPorts(ports);
  });

  it('keeps running, is live but not ready, names ZooKeeper on /readyz, and stops on SIGTERM', async () => {
    // A reserved port nobody listens on.
    ports = await reserveLoopbackPorts(1);
    sidecar = await SidecarProcess.start({ zookeeper: `127.0.0.1:${ports[0]}`, election: 'nozk', podName: 'nozk-0' });
    await new Promise((r) => setTimeout(r, 1500));
    expect(sidecar.alive).toBe(true);
    expect((await sidecar.http('/healthz')).status).toBe(200);
    const readyz = await sidecar.http('/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.body).toContain(`waiting for ZooKeeper at 127.0.0.1:${ports[0]}`);
    expect((await sidecar.http('/leader')).status).toBe(503);
    expect(sidecar.document()).toBeNull();
    const stoppedAt = Date.now();
    expect(await sidecar.stop()).toEqual({ code: 0, signal: null });
    expect(Date.now() - stoppedAt).toBeLessThan(2000);
    // Nothing from the zookeeper binding on stdout.
    expect(sidecar.logs).not.toContain('[stdout]');
  });
});
