import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { InjectionSettings, MountSettings } from './settings.js';

export const VOLUME_NAME = 'zkleader';
export const TOKEN_VOLUME_NAME = 'zkleader-token';
/** The sidecar's ZooKeeper credential (zookeeperAuth: required), from CREDENTIAL_SECRET_NAME. */
export const CREDENTIAL_VOLUME_NAME = 'zkleader-credential';
/** The Secret `zkleader tenant add` writes in each tenant namespace, and its key. */
export const CREDENTIAL_SECRET_NAME = 'zkleader-zookeeper';
export const CREDENTIAL_SECRET_KEY = 'credential';
/** Where the sidecar alone mounts the credential volume; the file is CREDENTIAL_FILE. */
export const CREDENTIAL_MOUNT_PATH = '/var/run/zkleader-credential';
export const CREDENTIAL_FILE = `${CREDENTIAL_MOUNT_PATH}/${CREDENTIAL_SECRET_KEY}`;
/** The sidecar's own mount of the shared volume (its --dir default). */
export const SIDECAR_DIR = '/var/run/zkleader';
/** Where client-node's in-cluster config looks for the token, CA and namespace. */
export const TOKEN_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Just over an hour, as the kubelet's own projected token: it refreshes at 80 % of it. */
const TOKEN_EXPIRATION_SECONDS = 3607;

/**
 * Room in the shared volume per config (zkleader.io/config): a version holds at most what
 * ZooKeeper accepts in one node (1 MiB by default), and while the sidecar switches to a
 * new version the old one is still on disk.
 */
export const CONFIG_VOLUME_MIB = 2;

// The leader files are tiny; Memory keeps them off the node's disk and 1Mi caps a runaway
// writer. Configs get room of their own, so the pods without any keep the 1Mi.
function sharedVolume(settings: InjectionSettings): V1Volume {
  const mib = 1 + CONFIG_VOLUME_MIB * settings.configs.length;
  return { name: VOLUME_NAME, emptyDir: { medium: 'Memory', sizeLimit: `${mib}Mi` } };
}

/**
 * The sidecar's own projected token when it labels pods (the app's token, if any, stays
 * the app's); otherwise an empty directory where the token would be, because the
 * ServiceAccount admission plugin, run again after the webhook changed the pod, mounts
 * the pod's token into every container that has nothing mounted there.
 */
function tokenVolume(settings: InjectionSettings): V1Volume {
  if (!settings.projectedToken) return { name: TOKEN_VOLUME_NAME, emptyDir: { medium: 'Memory', sizeLimit: '1Ki' } };
  return {
    name: TOKEN_VOLUME_NAME,
    projected: {
      sources: [
        { serviceAccountToken: { path: 'token', expirationSeconds: TOKEN_EXPIRATION_SECONDS } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

/**
 * The tenant credential (zookeeperAuth: required). Optional, so that a pod of a
 * namespace without a tenant yet still starts and its sidecar reports the missing file
 * on /readyz; the kubelet fills the file in once the Secret (or its key) appears, and
 * the sidecar reads it again.
 */
function credentialVolume(): V1Volume {
  return {
    name: CREDENTIAL_VOLUME_NAME,
    secret: { secretName: CREDENTIAL_SECRET_NAME, items: [{ key: CREDENTIAL_SECRET_KEY, path: CREDENTIAL_SECRET_KEY }], optional: true },
  };
}

/** The shared volume, the sidecar's token volume and, with zookeeperAuth required, its credential volume. */
export function buildVolumes(settings: InjectionSettings): V1Volume[] {
  const volumes = [sharedVolume(settings), tokenVolume(settings)];
  if (settings.zookeeperAuth === 'required') volumes.push(credentialVolume());
  return volumes;
}

/** The read-only mount an app container gets. */
export function buildAppMount(settings: MountSettings): V1VolumeMount {
  return { name: VOLUME_NAME, mountPath: settings.mountPath, readOnly: true };
}
