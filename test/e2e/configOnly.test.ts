import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigStore } from '../../zookeeper/configStore.js';
import { ZooKeeperSession } from '../../zookeeper/session.js';
import { findSidecar } from '../support/podRunner.js';
import { exampleWorkloadPod, LocalCluster, roleLabel } from '../support/localCluster.js';
import { testAdminCredential } from '../support/zookeeperEnsemble.js';

// A configuration-only pod with every real part: created through the API emulator and the
// real webhook (deploy/'s configuration, tenancy on), run by the pod runner, following a
// config set in the real ensemble.

let cluster: LocalCluster;
const { namespace } = exampleWorkloadPod('4s');

beforeAll(async () => {
  cluster = await LocalCluster.start();
}, 60_000);

afterAll(async () => {
  await cluster?.close();
}, 30_000);

describe('a pod with zkleader.io/config and no election', () => {
  it('gets a sidecar with no election, no labels and no token, and its files follow the config', async () => {
    const admin = new ZooKeeperSession({ connectString: cluster.zookeeper.connectString, sessionTimeoutMs: 10_000, credential: testAdminCredential });
    await new Promise<void>((resolve) => admin.once('connected', resolve));
    try {
      // As the admin: the tenant's credential would do the same (the admin passes every ACL).
      const store = new ConfigStore(admin, { root: '/zkleader' });
      const created = await cluster.createPod(namespace, {
        metadata: { generateName: 'pricing-', labels: { app: 'pricing' }, annotations: { 'zkleader.io/inject': 'true', 'zkleader.io/config': 'pricing-rules' } },
        spec: {
          serviceAccountName: 'orders',
          securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{ name: 'app', image: 'busybox:1.36', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true } }],
        },
      });
      const sidecar = findSidecar(created);
      expect(sidecar).toBeDefined();
      const env = Object.fromEntries((sidecar?.env ?? []).map((e) => [e.name, e.value]));
      expect(env).toMatchObject({ ZKLEADER_CONFIGS: 'pricing-rules', ZKLEADER_NO_LABEL: 'true' });
      expect(env.ZKLEADER_ELECTION).toBeUndefined();
      expect(created.metadata?.labels?.[roleLabel]).toBeUndefined();
      expect(created.spec?.volumes?.find((v) => v.name === 'zkleader-token')?.projected).toBeUndefined();

      const running = await cluster.start(created);
      // Not ready until the config exists; then its files.
      await sleep(1000);
      expect(await readFile(join(running.process.volumeDir, 'config.json'), 'utf8').catch(() => 'none')).toBe('none');
      await store.set(namespace, 'pricing-rules', { discount: '10' });
      let text = 'none';
      for (const deadline = Date.now() + 15_000; Date.now() < deadline && text === 'none'; await sleep(50)) {
        text = await readFile(join(running.process.volumeDir, 'config', 'pricing-rules', 'discount'), 'utf8').catch(() => 'none');
      }
      expect(text).toBe('10');
      // No election, no leader files, and the pod keeps no role label.
      expect(await running.process.leaderJson()).toBeUndefined();
      const stored = await cluster.core.readNamespacedPod({ namespace, name: created.metadata?.name ?? '' });
      expect(stored.metadata?.labels?.[roleLabel]).toBeUndefined();
    } finally {
      admin.close();
    }
  }, 60_000);
});
