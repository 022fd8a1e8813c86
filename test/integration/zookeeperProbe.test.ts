import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverMode } from '../support/fourLetterWord.js';
import { renderKustomization } from '../support/kustomize.js';
import { ZooKeeperEnsemble, type ZooKeeperServer } from '../support/zookeeperEnsemble.js';

const root = join(import.meta.dirname, '..', '..');
const sts = renderKustomization(join(root, 'deploy', 'zookeeper')).find((o) => o.kind === 'StatefulSet') as unknown as V1StatefulSet;
const container = sts.spec?.template.spec?.containers.find((c) => c.name === 'zookeeper');
const readiness = container?.readinessProbe?.exec?.command ?? [];
const liveness = container?.livenessProbe?.exec?.command ?? [];

/** Runs a probe's exec command as the kubelet would, against the test server's port; resolves to its exit code. */
function runProbe(command: string[], port: number): Promise<number> {
  const [file, ...args] = command.map((part) => part.replaceAll('/127.0.0.1/2181', `/127.0.0.1/${port}`));
  return new Promise((resolve) => {
    execFile(file ?? 'false', args, { timeout: 10_000 }, (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0));
  });
}

/** Runs the probe every 250 ms until it passes (`pass`) or fails; throws after `timeoutMs`. */
async function untilProbe(command: string[], server: ZooKeeperServer, pass: boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const code = await runProbe(command, server.clientPort);
    if ((code === 0) === pass) return;
    if (Date.now() > deadline) {
      const srvr = await server.fourLetterWord('srvr', 1000).catch((err: unknown) => (err as Error).message);
      throw new Error(`${what}: the probe still ${pass ? 'fails' : 'passes'} (exit ${code}) after ${timeoutMs} ms; srvr answers: ${srvr.trim()}`);
    }
    await sleep(250);
  }
}

async function modeOf(server: ZooKeeperServer): Promise<string | undefined> {
  return server.fourLetterWord('srvr', 1000).then(serverMode, () => undefined);
}

it('the manifest probes with bash /dev/tcp: readiness on srvr (serving in the quorum), liveness on ruok', () => {
  for (const command of [readiness, liveness]) expect(command.join(' ')).toContain('/dev/tcp/127.0.0.1/2181');
  expect(readiness.join(' ')).toContain('printf srvr');
  expect(liveness.join(' ')).toContain('printf ruok');
});

// The official image is not available here; the probe scripts run against Debian's ZooKeeper server.
describe('the ZooKeeper probes of deploy/zookeeper, on a single server', () => {
  let ensemble: ZooKeeperEnsemble;
  beforeAll(async () => {
    ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  });
  afterAll(async () => {
    await ensemble?.close();
  });

  it.each([
    ['readiness', readiness],
    ['liveness', liveness],
  ])('%s passes on a serving server, fails on a frozen one and on a stopped one', async (_name, command) => {
    const [server] = ensemble.servers;
    if (!server) throw new Error('no server');
    // A one-server config with standalone enabled: srvr says Mode: standalone, which is serving.
    expect(await modeOf(server)).toBe('standalone');
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
      // start() resolves at the first ruok; a server loads its data before it serves.
      await server.waitServing();
    }
    expect(await runProbe(command, server.clientPort)).toBe(0);
  });
});

describe('the ZooKeeper probes of deploy/zookeeper, on a 3-server ensemble', () => {
  let ensemble: ZooKeeperEnsemble;
  beforeAll(async () => {
    ensemble = await ZooKeeperEnsemble.start({ size: 3, partitionable: true });
  });
  afterAll(async () => {
    await ensemble?.close();
  });
  afterEach(async () => {
    // Each test starts from every link passing and every server serving.
    ensemble.heal();
    await Promise.all(ensemble.servers.map((s) => s.waitServing(30_000)));
  });

  it('readiness and liveness pass on the leader and on both followers', async () => {
    const modes = await Promise.all(ensemble.servers.map(modeOf));
    expect([...modes].sort()).toEqual(['follower', 'follower', 'leader']);
    for (const server of ensemble.servers) {
      expect({ server: server.id, readiness: await runProbe(readiness, server.clientPort), liveness: await runProbe(liveness, server.clientPort) }).toEqual({
        server: server.id,
        readiness: 0,
        liveness: 0,
      });
    }
  });

  it.each(['follower', 'leader'])('readiness fails on a %s cut off from its peers while liveness passes; healed, it is ready again', async (role) => {
    const modes = await Promise.all(ensemble.servers.map(modeOf));
    const cutOff = ensemble.servers.find((_, i) => modes[i] === role);
    if (!cutOff) throw new Error(`no ${role} among ${modes.join(', ')}`);
    const others = ensemble.servers.filter((s) => s !== cutOff);
    ensemble.isolate(cutOff, 'drop');
    // It notices within syncLimit ticks (1 s here) and stops serving: "This ZooKeeper
    // instance is not currently serving requests".
    await untilProbe(readiness, cutOff, false, 15_000, `readiness on the isolated ${role}`);
    expect(serverMode(await cutOff.fourLetterWord('srvr', 1000))).toBeUndefined();
    // Alive all the same: a restart would not bring its peers back.
    expect(await runProbe(liveness, cutOff.clientPort)).toBe(0);
    // The other two keep (or elect) a quorum and are ready.
    for (const other of others) await untilProbe(readiness, other, true, 30_000, `readiness on server ${other.id}, in the majority`);
    ensemble.heal();
    await untilProbe(readiness, cutOff, true, 30_000, `readiness on the healed ${role}`);
    expect(['leader', 'follower']).toContain(await modeOf(cutOff));
  }, 90_000);
});
