import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { renderKustomization } from '../support/kustomize.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

const root = join(import.meta.dirname, '..', '..');
const sts = renderKustomization(join(root, 'deploy', 'zookeeper')).find((o) => o.kind === 'StatefulSet') as unknown as V1StatefulSet;
const container = sts.spec?.template.spec?.containers.find((c) => c.name === 'zookeeper');

let ensemble: ZooKeeperEnsemble;
beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
});
afterAll(async () => {
  await ensemble?.close();
});

/** Runs a probe's exec command as the kubelet would, against the test server's port; resolves to its exit code. */
function runProbe(command: string[], port: number): Promise<number> {
  const [file, ...args] = command.map((part) => part.replaceAll('/127.0.0.1/2181', `/127.0.0.1/${port}`));
  return new Promise((resolve) => {
    execFile(file ?? 'false', args, { timeout: 10_000 }, (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0));
  });
}

// The official image is not available here; its probe script runs against Debian's ZooKeeper server.
describe('the ZooKeeper ruok probes of deploy/zookeeper', () => {
  it.each([
    ['readiness', container?.readinessProbe?.exec?.command ?? []],
    ['liveness', container?.livenessProbe?.exec?.command ?? []],
  ])('%s passes on a serving server, fails on a frozen one and on a stopped one', async (_name, command) => {
    const [server] = ensemble.servers;
    if (!server) throw new Error('no server');
    expect(command.join(' ')).toContain('/dev/tcp/127.0.0.1/2181');
    expect(await runProbe(command, server.clientPort)).toBe(0);
    await server.pause();
    try {
      expect(await runProbe(command, server.clientPort)).not.toBe(0);
    } finally {
      await server.resume();
    }
    await server.stop();
    try {
      expect(await runProbe(command, server.clientPort)).not.toBe(0);
    } finally {
      await server.start();
    }
    expect(await runProbe(command, server.clientPort)).toBe(0);
  });
});
