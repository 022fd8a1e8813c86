import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { InjectionSettings, MountSettings } from './settings.js';

export const VOLUME_NAME = 'zkleader';
export const TOKEN_VOLUME_NAME = 'zkleader-token';
/** The sidecar's own mount of the shared volume (its --dir default). */
export const SIDECAR_DIR = '/var/run/zkleader';
/** Where client-node's in-cluster config looks for the token, CA and namespace. */
export const TOKEN_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Just over an hour, as the kubelet's own projected token: it refreshes at 80 % of it. */
const TOKEN_EXPIRATION_SECONDS = 3607;

/**
 * The shared volume, and the sidecar's token volume: its own projected token when it
 * labels pods (the app's token, if any, stays the app's); otherwise an empty directory
 * where the token would be, because the ServiceAccount admission plugin, run again after
 * the webhook changed the pod, mounts the pod's token into every container that has
 * nothing mounted there.
 */
export function buildVolumes(settings: InjectionSettings): V1Volume[] {
  // The files are tiny; Memory keeps them off the node's disk and 1Mi caps a runaway writer.
  const shared: V1Volume = { name: VOLUME_NAME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } };
  if (!settings.projectedToken) return [shared, { name: TOKEN_VOLUME_NAME, emptyDir: { medium: 'Memory', sizeLimit: '1Ki' } }];
  return [
    shared,
    {
      name: TOKEN_VOLUME_NAME,
      projected: {
        sources: [
          { serviceAccountToken: { path: 'token', expirationSeconds: TOKEN_EXPIRATION_SECONDS } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    },
  ];
}

/** The read-only mount an app container gets. */
export function buildAppMount(settings: MountSettings): V1VolumeMount {
  return { name: VOLUME_NAME, mountPath: settings.mountPath, readOnly: true };
}
