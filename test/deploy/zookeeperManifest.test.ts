import { describe, expect, it } from '@jest/globals';
import type { V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { join } from 'node:path';
import { renderKustomization } from '../support/kustomize.js';

// deploy/zookeeper must work in any namespace and with any cluster domain: the servers
// name each other relative to the pod's DNS search path (<namespace>.svc.<domain>).

const root = join(import.meta.dirname, '..', '..');
const objects = renderKustomization(join(root, 'deploy', 'zookeeper'));
const sts = objects.find((o) => o.kind === 'StatefulSet') as unknown as V1StatefulSet;
const container = sts.spec?.template.spec?.containers.find((c) => c.name === 'zookeeper');
const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? '']));

describe('the ZooKeeper manifests of deploy/zookeeper', () => {
  it.each(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o] as const))('%s does not name the cluster domain', (_name, obj) => {
    expect(JSON.stringify(obj)).not.toContain('cluster.local');
  });

  it('ZOO_SERVERS lists one server per replica as <statefulset>-<ordinal>.<serviceName>, relative to the namespace', () => {
    const name = sts.metadata?.name ?? '';
    const serviceName = sts.spec?.serviceName ?? '';
    const headless = objects.find((o) => o.kind === 'Service' && o.metadata.name === serviceName) as unknown as V1Service | undefined;
    expect(headless?.spec?.clusterIP).toBe('None');
    const replicas = sts.spec?.replicas ?? 0;
    expect(replicas).toBeGreaterThanOrEqual(3);
    const servers = (env.ZOO_SERVERS ?? '').split(/\s+/).filter(Boolean);
    expect(servers).toEqual(Array.from({ length: replicas }, (_, ordinal) => `server.${ordinal + 1}=${name}-${ordinal}.${serviceName}:2888:3888;2181`));
  });

  it('a rolling update waits for a restarted server to be ready for a while before the next', () => {
    expect(sts.spec?.updateStrategy?.type).toBe('RollingUpdate');
    expect(sts.spec?.minReadySeconds).toBeGreaterThanOrEqual(10);
  });
});
