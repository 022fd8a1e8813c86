import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';
import { releaseLoopbackPorts, reserveLoopbackPorts } from './loopbackPorts.js';
import { trackChildProcess } from './processRegistry.js';
import { zkleaderBin } from './repoRoot.js';

export { zkleaderBin } from './repoRoot.js';

export const SIDECAR_CONTAINER = 'zkleader';
export const SHARED_VOLUME = 'zkleader';

/** The injected sidecar of a pod: a native sidecar in initContainers, or a classic one in containers. */
export function findSidecar(pod: V1Pod): V1Container | undefined {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return all.find((c) => c.name === SIDECAR_CONTAINER);
}

export interface ResolveContext {
  /** The address the runner gives the pod when its status has none. */
  podIP: string;
}

/** The value a downward-API fieldRef resolves to, as the kubelet does; throws for paths it does not support. */
export function resolveFieldRef(pod: V1Pod, fieldPath: string, ctx: ResolveContext): string {
  const meta = pod.metadata ?? {};
  const mapKey = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (mapKey) return (mapKey[1] === 'labels' ? meta.labels : meta.annotations)?.[mapKey[2] ?? ''] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? 'default';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'status.podIP':
      return pod.status?.podIP ?? ctx.podIP;
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? 'localhost';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    default:
      throw new Error(`pod runner: fieldRef ${JSON.stringify(fieldPath)} is not supported`);
  }
}

/**
 * The environment a container's spec resolves to: literal values, `$(VAR)` references
 * to earlier variables, and downward-API fieldRefs. Secret, ConfigMap and resource
 * references are refused, because the runner cannot resolve them faithfully.
 */
export function resolveContainerEnv(pod: V1Pod, container: V1Container, ctx: ResolveContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of container.env ?? []) env[v.name] = resolveEnvVar(pod, v, env, ctx);
  return env;
}

function resolveEnvVar(pod: V1Pod, v: V1EnvVar, earlier: Record<string, string>, ctx: ResolveContext): string {
  if (v.valueFrom) {
    if (v.valueFrom.fieldRef) return resolveFieldRef(pod, v.valueFrom.fieldRef.fieldPath, ctx);
    throw new Error(`pod runner: env ${v.name} uses a valueFrom source other than fieldRef`);
  }
  // Kubernetes expands $(NAME) of variables defined earlier; $$ escapes a dollar.
  return (v.value ?? '').replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) =>
    m === '$$' ? '$' : name !== undefined && name in earlier ? (earlier[name] ?? '') : m,
  );
}

export interface PodRunnerOptions {
  /** Kubeconfig the sidecar uses instead of the in-cluster configuration. */
  kubeconfig?: string;
  /** Pod IP when the stored pod's status has none. */
  podIP?: string;
  /** Extra environment, applied last (e.g. ZKLEADER_LOG_LEVEL). */
  env?: Record<string, string>;
  /** Where the sidecar's stderr goes; default: collected in `RunningPod.logs()`. */
  stderr?: 'collect' | 'inherit';
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningPod {
  readonly name: string;
  readonly namespace: string;
  /** The temporary directory standing in for the pod's `zkleader` emptyDir. */
  readonly volumeDir: string;
  /** 127.0.0.1:<port> the sidecar serves HTTP on. */
  readonly listen: string;
  readonly process: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  /** SIGTERM, then SIGKILL after the grace period (the pod's terminationGracePeriodSeconds unless given). */
  stop(graceMs?: number): Promise<ExitStatus>;
  kill(): Promise<ExitStatus>;
  pause(): void;
  resume(): void;
  /** leader.json as the app would read it, or undefined before the first write. */
  leaderJson(): Promise<Record<string, unknown> | undefined>;
  logs(): string;
  /** Removes the volume directory; stops the process first if it still runs. */
  dispose(): Promise<void>;
}

/**
 * Runs a stored pod's injected `zkleader` container as a local process: the
 * container's args against bin/zkleader (the image's entrypoint), with the
 * environment its spec resolves to, a temporary directory in place of the shared
 * volume (paths under its mount path are rewritten), a free loopback port for its
 * HTTP listener, and the emulator's kubeconfig in place of in-cluster credentials.
 */
export async function runPod(pod: V1Pod, opts: PodRunnerOptions = {}): Promise<RunningPod> {
  const name = pod.metadata?.name;
  if (!name) throw new Error('pod runner: the pod has no metadata.name');
  const namespace = pod.metadata?.namespace ?? 'default';
  const sidecar = findSidecar(pod);
  if (!sidecar) throw new Error(`pod runner: pod ${namespace}/${name} has no ${SIDECAR_CONTAINER} container`);
  if (sidecar.command?.length) {
    throw new Error(`pod runner: container ${SIDECAR_CONTAINER} overrides the image entrypoint (command ${JSON.stringify(sidecar.command)})`);
  }
  const mountPath = sidecar.volumeMounts?.find((m) => m.name === SHARED_VOLUME)?.mountPath;
  if (!mountPath) throw new Error(`pod runner: container ${SIDECAR_CONTAINER} does not mount volume ${SHARED_VOLUME}`);

  const volumeDir = await mkdtemp(join(tmpdir(), `zkleader-pod-${name}-`));
  const rewrite = (value: string): string =>
    value === mountPath || value.startsWith(`${mountPath}/`) ? volumeDir + value.slice(mountPath.length) : value;
  const resolved = resolveContainerEnv(pod, sidecar, { podIP: opts.podIP ?? '127.0.0.1' });
  const [port] = await reserveLoopbackPorts(1);
  const listen = `127.0.0.1:${port}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    ...Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, rewrite(v)])),
    ZKLEADER_LISTEN: listen,
    ...(opts.kubeconfig !== undefined && { ZKLEADER_KUBECONFIG: opts.kubeconfig }),
    ...opts.env,
  };
  const args = (sidecar.args ?? []).map(rewrite);
  const child = spawn(zkleaderBin, args, { env, stdio: ['ignore', 'pipe', opts.stderr === 'inherit' ? 'inherit' : 'pipe'] });
  // Registered like the ZooKeeper JVMs: killed if the runner's process exits, and global
  // teardown fails the run if a pod's sidecar outlives its test.
  trackChildProcess(child, `pod ${namespace}/${name} sidecar`);
  let logs = '';
  child.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      releaseLoopbackPorts([port as number]);
      resolve({ code, signal });
    });
  });
  const defaultGraceMs = (pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;

  const handle: RunningPod = {
    name,
    namespace,
    volumeDir,
    listen,
    process: child,
    exited,
    async stop(graceMs = defaultGraceMs) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async leaderJson() {
      try {
        return JSON.parse(await readFile(join(volumeDir, 'leader.json'), 'utf8')) as Record<string, unknown>;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    logs: () => logs,
    async dispose() {
      await handle.kill();
      await rm(volumeDir, { recursive: true, force: true });
    },
  };
  return handle;
}
