import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { readEnsembleTiming } from '../../zookeeper/leaseCondition.js';
import { SidecarProcess } from '../support/sidecarProcess.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// The sidecar reads the ensemble's tickTime with the `conf` four-letter word and warns when
// the session timeout it was granted makes the validUntil lease unsafe.

let ensemble: ZooKeeperEnsemble;
const sidecars: SidecarProcess[] = [];

beforeAll(async () => {
  // tickTime 1.5 s: a 4 s session timeout is below 3 × tickTime.
  ensemble = await ZooKeeperEnsemble.start({ size: 1, tickTimeMs: 1500 });
}, 60_000);

afterAll(async () => {
  await Promise.all(sidecars.map((s) => s.close()));
  await ensemble?.close();
});

async function logged(sidecar: SidecarProcess, text: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!sidecar.logs.includes(text)) {
    if (Date.now() > deadline) throw new Error(`${sidecar.podName} did not log ${JSON.stringify(text)}: ${sidecar.logs}`);
    await sleep(50);
  }
}

describe('the lease condition', () => {
  it('is read from the servers of the connect string', async () => {
    expect(await readEnsembleTiming(ensemble.connectString)).toMatchObject({ tickTimeMs: 1500 });
    // Nothing listens there: no answer is no timing, not an error.
    expect(await readEnsembleTiming('127.0.0.1:1', 500)).toBeNull();
  });

  it('a sidecar granted a session timeout below 3 × tickTime warns once, naming both', async () => {
    const sidecar = await SidecarProcess.start({ zookeeper: ensemble.connectString, election: 'lease-condition', podName: 'lease-0', sessionTimeout: '4s' });
    sidecars.push(sidecar);
    await logged(sidecar, 'lease condition: the session timeout 4000 ms is below 3 × tickTime (4500 ms)');
    await sidecar.waitFor((d) => d.isLeader, 15_000, 'leadership');
    expect(sidecar.logs.match(/lease condition:/g)).toHaveLength(1);
  }, 60_000);
});
