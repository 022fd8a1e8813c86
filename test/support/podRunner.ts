import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig, type V1Container, type V1EnvVar, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { releaseLoopbackPorts, reserveLoopbackPorts } from './loopbackPorts.js';
import { gateAppContainers, type AppStart } from './startupGate.js';
import { trackChildProcess } from './processRegistry.js';
import { zkleaderBin } from './repoRoot.js';

export { zkleaderBin } from './repoRoot.js';

export const SIDECAR_CONTAINER = 'zkleader';
export const SHARED_VOLUME = 'zkleader';
/** Where client libraries' in-cluster configuration reads the token, CA and namespace. */
export const IN_CLUSTER_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

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
  /** Kubeconfig the sidecar uses instead of the in-cluster configuration (ignored with `kubelet`). */
  kubeconfig?: string;
  /**
   * The kubelet's connection to the API server. With it the runner does what the kubelet
   * does for the volume the sidecar mounts at the in-cluster token path: for a projected
   * volume with a `serviceAccountToken` source it asks the TokenRequest API for a token of
   * the pod's ServiceAccount bound to the pod (its audience and expirationSeconds), and
   * writes it with the namespace into a temporary directory standing in for the volume; the
   * sidecar then reaches that API server as the pod's service account, through a kubeconfig
   * that reads the token file as the in-cluster configuration does. A sidecar that mounts
   * something else there (the empty directory of a non-labelling sidecar) gets no API access.
   */
  kubelet?: KubeConfig;
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
  /** The kubeconfig the sidecar was given (ZKLEADER_KUBECONFIG): with `kubelet`, one reading its projected token. */
  readonly kubeconfig: string | undefined;
  readonly process: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  /** The app containers behind the native sidecar's startupProbe, as the kubelet starts them (startupGate.ts). */
  readonly apps: AppStart;
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

/** A Secret volume the sidecar mounts, filled as the kubelet fills it. */
interface SecretMount {
  readonly mountPath: string;
  readonly dir: string;
}

/**
 * Writes each Secret volume the sidecar mounts into a temporary directory, as the kubelet
 * does (the Secret's keys, or its `items`, as files); an `optional` Secret that does not
 * exist gives an empty directory, a required one fails as the pod would not start. Read
 * with the kubelet's connection (the kubelet reads the Secrets of its pods).
 */
async function fillSecretVolumes(pod: V1Pod, sidecar: V1Container, kubelet: KubeConfig | undefined): Promise<SecretMount[]> {
  const mounts: SecretMount[] = [];
  for (const mount of sidecar.volumeMounts ?? []) {
    const source = pod.spec?.volumes?.find((v) => v.name === mount.name)?.secret;
    if (!source) continue;
    if (!kubelet) throw new Error(`pod runner: container ${SIDECAR_CONTAINER} mounts the Secret volume ${mount.name}; pass \`kubelet\` to fill it`);
    const namespace = pod.metadata?.namespace ?? 'default';
    const dir = await mkdtemp(join(tmpdir(), `zkleader-pod-${mount.name}-`));
    mounts.push({ mountPath: mount.mountPath, dir });
    let data: Record<string, string>;
    try {
      const secret = await kubelet.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name: source.secretName ?? '' });
      data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code !== 404) throw err;
      if (!source.optional) {
        throw new Error(`pod runner: Secret ${namespace}/${source.secretName ?? ''} of volume ${mount.name} does not exist (not optional: the pod would not start)`, { cause: err });
      }
      continue;
    }
    const items = source.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const item of items) {
      if (data[item.key] !== undefined) await writeFile(join(dir, item.path), data[item.key] as string, { mode: 0o600 });
    }
  }
  return mounts;
}

/** The token volume as the kubelet fills it, and a kubeconfig that reads it. */
interface ProjectedToken {
  /** Holds `serviceaccount/{token,namespace}` and `kubeconfig`. */
  dir: string;
  kubeconfig: string;
}

/**
 * What the kubelet puts into the volume the sidecar mounts at IN_CLUSTER_TOKEN_PATH, and a
 * kubeconfig for the sidecar to use it with; undefined when that volume holds no
 * service-account token (or there is no such mount).
 */
async function projectToken(pod: V1Pod, sidecar: V1Container, kubelet: KubeConfig): Promise<ProjectedToken | undefined> {
  const volumeName = sidecar.volumeMounts?.find((m) => m.mountPath === IN_CLUSTER_TOKEN_PATH)?.name;
  const volume = pod.spec?.volumes?.find((v) => v.name === volumeName);
  const tokenSource = volume?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken;
  if (!tokenSource) return undefined;
  const name = pod.metadata?.name ?? '';
  const namespace = pod.metadata?.namespace ?? 'default';
  const issued = await kubelet.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: pod.spec?.serviceAccountName ?? 'default',
    namespace,
    body: {
      spec: {
        audiences: tokenSource.audience ? [tokenSource.audience] : [],
        ...(tokenSource.expirationSeconds !== undefined && { expirationSeconds: tokenSource.expirationSeconds }),
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name, ...(pod.metadata?.uid && { uid: pod.metadata.uid }) },
      },
    },
  });
  const token = issued.status?.token;
  if (!token) throw new Error(`pod runner: the TokenRequest for pod ${namespace}/${name} returned no token`);
  const dir = await mkdtemp(join(tmpdir(), `zkleader-pod-${name}-token-`));
  const files = join(dir, 'serviceaccount');
  await mkdir(files);
  await writeFile(join(files, tokenSource.path), token, { mode: 0o600 });
  await writeFile(join(files, 'namespace'), namespace);
  const cluster = kubelet.getCurrentCluster();
  if (!cluster) throw new Error('pod runner: the kubelet configuration names no cluster');
  const kubeconfig = join(dir, 'kubeconfig');
  // client-node's loadFromCluster() reads the token the same way: an auth provider that re-reads the file.
  const document = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'cluster', cluster: { server: cluster.server, 'insecure-skip-tls-verify': cluster.skipTLSVerify } }],
    users: [{ name: 'pod', user: { 'auth-provider': { name: 'tokenFile', config: { tokenFile: join(files, tokenSource.path) } } } }],
    contexts: [{ name: 'pod', context: { cluster: 'cluster', user: 'pod', namespace } }],
    'current-context': 'pod',
  };
  await writeFile(kubeconfig, stringify(document), { mode: 0o600 });
  return { dir, kubeconfig };
}

/**
 * Runs a stored pod's injected `zkleader` container as a local process: the
 * container's args against bin/zkleader (the image's entrypoint), with the
 * environment its spec resolves to, a temporary directory in place of the shared
 * volume (paths under its mount path are rewritten), a free loopback port for its
 * HTTP listener, and in place of in-cluster credentials either the pod's own projected
 * service-account token from the API server (`kubelet`, as a kubelet fills the volume) or a
 * given kubeconfig.
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

  const projected = opts.kubelet ? await projectToken(pod, sidecar, opts.kubelet) : undefined;
  const kubeconfig = opts.kubelet ? projected?.kubeconfig : opts.kubeconfig;
  const volumeDir = await mkdtemp(join(tmpdir(), `zkleader-pod-${name}-`));
  const secrets = await fillSecretVolumes(pod, sidecar, opts.kubelet);
  // Paths under a mount path go to the directory standing in for that volume.
  const mounted: readonly { mountPath: string; dir: string }[] = [{ mountPath, dir: volumeDir }, ...secrets];
  const rewrite = (value: string): string => {
    const mount = mounted.find((m) => value === m.mountPath || value.startsWith(`${m.mountPath}/`));
    return mount ? mount.dir + value.slice(mount.mountPath.length) : value;
  };
  const resolved = resolveContainerEnv(pod, sidecar, { podIP: opts.podIP ?? '127.0.0.1' });
  const [port] = await reserveLoopbackPorts(1);
  const listen = `127.0.0.1:${port}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    ...Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, rewrite(v)])),
    ZKLEADER_LISTEN: listen,
    ...(kubeconfig !== undefined && { ZKLEADER_KUBECONFIG: kubeconfig }),
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
  const apps = gateAppContainers(pod, sidecar, listen);
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      apps.stop();
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
    kubeconfig,
    process: child,
    exited,
    apps,
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
      if (projected) await rm(projected.dir, { recursive: true, force: true });
      for (const secret of secrets) await rm(secret.dir, { recursive: true, force: true });
    },
  };
  return handle;
}
