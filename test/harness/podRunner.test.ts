import { afterEach, describe, expect, it } from '@jest/globals';
import { stat } from 'node:fs/promises';
import type { V1Pod } from '@kubernetes/client-node';
import { findSidecar, resolveContainerEnv, resolveFieldRef, runPod, type RunningPod } from '../support/podRunner.js';

function pod(overrides: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name: 'orders-0', namespace: 'shop', uid: 'u-1', labels: { app: 'orders' }, annotations: { 'zkleader.io/inject': 'true' } },
    spec: {
      containers: [{ name: 'app', image: 'busybox' }],
      initContainers: [
        {
          name: 'zkleader',
          image: 'zkleader',
          restartPolicy: 'Always',
          args: ['--version'],
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
            { name: 'ZKLEADER_DIR', value: '/var/run/zkleader' },
            { name: 'GREETING', value: '$(POD_NAME) costs $$5 $(UNKNOWN)' },
          ],
          volumeMounts: [{ name: 'zkleader', mountPath: '/var/run/zkleader' }],
        },
      ],
      volumes: [{ name: 'zkleader', emptyDir: { medium: 'Memory' } }],
      ...overrides,
    },
  };
}

describe('resolveContainerEnv', () => {
  it('resolves literal values, $(VAR) references and downward-API fieldRefs', () => {
    const p = pod();
    const env = resolveContainerEnv(p, findSidecar(p)!, { podIP: '127.0.0.9' });
    expect(env).toEqual({
      POD_NAME: 'orders-0',
      POD_IP: '127.0.0.9',
      APP: 'orders',
      ZKLEADER_DIR: '/var/run/zkleader',
      GREETING: 'orders-0 costs $5 $(UNKNOWN)',
    });
  });

  it('prefers the pod status IP and refuses unsupported sources', () => {
    const p = { ...pod(), status: { podIP: '10.0.0.7' } };
    expect(resolveFieldRef(p, 'status.podIP', { podIP: '127.0.0.9' })).toBe('10.0.0.7');
    expect(() => resolveFieldRef(p, 'status.hostIPs', { podIP: 'x' })).toThrow('fieldRef "status.hostIPs" is not supported');
    const secretRef = pod();
    findSidecar(secretRef)!.env = [{ name: 'T', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }];
    expect(() => resolveContainerEnv(secretRef, findSidecar(secretRef)!, { podIP: 'x' })).toThrow('env T uses a valueFrom source other than fieldRef');
  });
});

describe('findSidecar', () => {
  it('finds a native sidecar in initContainers and a classic one in containers', () => {
    expect(findSidecar(pod())?.restartPolicy).toBe('Always');
    const classic = pod({ initContainers: [], containers: [{ name: 'app' }, { name: 'zkleader', args: ['sidecar'] }] });
    expect(findSidecar(classic)?.args).toEqual(['sidecar']);
    expect(findSidecar(pod({ initContainers: [] }))).toBeUndefined();
  });
});

describe('runPod', () => {
  let running: RunningPod | undefined;
  afterEach(async () => {
    await running?.dispose();
    running = undefined;
  });

  it('runs the container args against bin/zkleader and reports the exit code', async () => {
    running = await runPod(pod());
    expect(await running.exited).toEqual({ code: 0, signal: null });
    expect(running.logs()).toMatch(/^zkleader \d+\.\d+\.\d+/);
    expect((await stat(running.volumeDir)).isDirectory()).toBe(true);
    expect(running.listen).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('reports a failing command with its exit code', async () => {
    const p = pod();
    findSidecar(p)!.args = ['no-such-command'];
    running = await runPod(p);
    expect((await running.exited).code).toBe(2);
    expect(running.logs()).toContain('unknown command "no-such-command"');
  });

  it('refuses pods it cannot run faithfully', async () => {
    await expect(runPod(pod({ initContainers: [] }))).rejects.toThrow('pod shop/orders-0 has no zkleader container');
    const p = pod();
    findSidecar(p)!.volumeMounts = [];
    await expect(runPod(p)).rejects.toThrow('does not mount volume zkleader');
  });

  it('removes the volume directory on dispose', async () => {
    const r = await runPod(pod());
    await r.dispose();
    await expect(stat(r.volumeDir)).rejects.toThrow('ENOENT');
  });
});
