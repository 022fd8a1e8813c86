import type { V1Container, V1EnvVar, V1Probe, V1VolumeMount } from '@kubernetes/client-node';
import { formatDuration } from '../cli/duration.js';
import type { InjectionSettings } from './settings.js';
import { CREDENTIAL_FILE, CREDENTIAL_MOUNT_PATH, CREDENTIAL_VOLUME_NAME, SIDECAR_DIR, TOKEN_MOUNT_PATH, TOKEN_VOLUME_NAME, VOLUME_NAME } from './buildVolumes.js';

export const SIDECAR_NAME = 'zkleader';
export const SIDECAR_PORT = 4040;
/** Not `http`, which most apps name their own port: a Service's `targetPort: http` must not reach the sidecar. */
export const SIDECAR_PORT_NAME = 'zkleader';
/** The image's user; matches the `restricted` Pod Security Standard (non-root). */
export const SIDECAR_UID = 65532;

function fieldEnv(name: string, fieldPath: string): V1EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

/**
 * A 1 MiB young generation, and no JIT: the sidecar runs little JavaScript (a heartbeat,
 * an outcome now and then), and without the optimizing compilers V8 touches about 9 MiB
 * less of the node binary and of its own heap (bench/sidecarMemory.ts). --lite-mode would do
 * less but is not allowed in NODE_OPTIONS. --jitless also turns off WebAssembly, which the
 * sidecar does not use.
 */
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=1 --jitless';

/**
 * A cold standby waits for leadership as long as it takes: the startupProbe must never give up
 * on it, since the kubelet restarts a sidecar whose startupProbe fails failureThreshold times
 * in a row (and it would lose its place in the election). The apiserver accepts any int32;
 * at one probe a second this is 68 years.
 */
export const STANDBY_FAILURE_THRESHOLD = 2_147_483_647;

function httpProbe(path: string, extra: Omit<V1Probe, 'httpGet'>): V1Probe {
  return { httpGet: { path, port: SIDECAR_PORT }, ...extra };
}

/**
 * The `zkleader sidecar` container (contract-sidecar-cli): configuration through
 * the environment, identity through the downward API. Native mode makes it an init
 * container with restartPolicy Always whose startupProbe holds the app back until
 * the first election outcome, and every config the pod names, is on disk (the sidecar
 * is ready only then). A configuration-only pod's sidecar (election null) gets no
 * election and, as with zkleader.io/label "false", ZKLEADER_NO_LABEL.
 */
export function buildSidecar(settings: InjectionSettings): V1Container {
  const env: V1EnvVar[] = [
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('POD_UID', 'metadata.uid'),
    fieldEnv('POD_IP', 'status.podIP'),
    { name: 'ZKLEADER_ZOOKEEPER', value: settings.zookeeper },
    // A configuration-only sidecar joins no election: it gets no --election (and labels nothing, below).
    ...(settings.election !== null ? [{ name: 'ZKLEADER_ELECTION', value: settings.election }] : []),
    // One election across clusters: only a member of an election has a use for it, and without
    // the setting the container is what it always was.
    ...(settings.election !== null && settings.cluster !== '' ? [{ name: 'ZKLEADER_CLUSTER', value: settings.cluster }] : []),
    ...(settings.configs.length > 0 ? [{ name: 'ZKLEADER_CONFIGS', value: settings.configs.join(',') }] : []),
    { name: 'ZKLEADER_SESSION_TIMEOUT', value: formatDuration(settings.sessionTimeoutMs) },
    { name: 'ZKLEADER_DIR', value: SIDECAR_DIR },
    // `[::]` listens on both address families (IPv6-only and dual-stack clusters probe the IPv6 address).
    { name: 'ZKLEADER_LISTEN', value: `[::]:${SIDECAR_PORT}` },
    // A 1 MiB young generation keeps the idle sidecar about 25 MB smaller (bench/RESULTS.md);
    // it allocates little, so the extra scavenges cost nothing measurable. No JIT: 9 MiB less.
    { name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS },
  ];
  if (!settings.label) env.push({ name: 'ZKLEADER_NO_LABEL', value: 'true' });
  if (settings.start === 'leader') env.push({ name: 'ZKLEADER_START', value: 'leader' });

  // The token volume is always mounted: without labelling it is empty, so no API token is mounted there.
  const volumeMounts: V1VolumeMount[] = [
    { name: VOLUME_NAME, mountPath: SIDECAR_DIR },
    { name: TOKEN_VOLUME_NAME, mountPath: TOKEN_MOUNT_PATH, readOnly: true },
  ];
  // The tenant credential is the sidecar's alone: no app container ever mounts this volume.
  if (settings.zookeeperAuth === 'required') {
    env.push({ name: 'ZKLEADER_CREDENTIAL_FILE', value: CREDENTIAL_FILE });
    volumeMounts.push({ name: CREDENTIAL_VOLUME_NAME, mountPath: CREDENTIAL_MOUNT_PATH, readOnly: true });
  }

  const liveness = httpProbe('/healthz', { periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 });
  // A ZooKeeper slow to answer must not get the sidecar killed before its first outcome.
  // Cold standby: /startz answers 200 only once this member has led, so a follower's app never starts.
  const startupProbe =
    settings.start === 'leader'
      ? httpProbe('/startz', { periodSeconds: 1, failureThreshold: STANDBY_FAILURE_THRESHOLD })
      : httpProbe('/readyz', { periodSeconds: 1, failureThreshold: 300 });
  const modeFields: Partial<V1Container> =
    settings.sidecarMode === 'native'
      ? { restartPolicy: 'Always', startupProbe, livenessProbe: liveness }
      : { readinessProbe: httpProbe('/readyz', { periodSeconds: 2 }), livenessProbe: liveness };

  return {
    name: SIDECAR_NAME,
    image: settings.image,
    imagePullPolicy: settings.imagePullPolicy,
    args: ['sidecar'],
    env,
    ports: [{ name: SIDECAR_PORT_NAME, containerPort: SIDECAR_PORT, protocol: 'TCP' }],
    ...modeFields,
    resources: { requests: { ...settings.resources.requests }, limits: { ...settings.resources.limits } },
    volumeMounts,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}
