import type { AdmissionStep } from './admission.js';
import { randomNameSuffix } from './nameSyntax.js';
import type { StoredObject } from './resources.js';
import { admissionForbidden } from './status.js';

/** Where client libraries' in-cluster configuration reads the token, CA and namespace. */
export const SERVICE_ACCOUNT_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The prefix of the volume the plugin adds (ServiceAccountVolumeName). */
export const SERVICE_ACCOUNT_VOLUME_PREFIX = 'kube-api-access-';
const DEFAULT_SERVICE_ACCOUNT = 'default';
/** Annotation of a static pod's mirror in the API, whose spec the plugin never changes. */
const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

export interface ServiceAccountLike {
  metadata: { name: string; namespace?: string };
  automountServiceAccountToken?: boolean;
  imagePullSecrets?: Array<{ name?: string }>;
}

interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface ContainerLike {
  volumeMounts?: VolumeMount[];
}
interface PodSpecLike {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  imagePullSecrets?: Array<{ name?: string }>;
  volumes?: Array<{ name: string }>;
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
}

/**
 * The ServiceAccount admission plugin of kube-apiserver on pod CREATE
 * (plugin/pkg/admission/serviceaccount/admission.go), an in-tree mutating plugin that runs
 * before the mutating webhooks:
 * - the pod's serviceAccountName defaults to `default`;
 * - the ServiceAccount must exist, or the pod is refused with 403
 *   (`error looking up service account NS/NAME: serviceaccount "NAME" not found`);
 * - unless the pod's automountServiceAccountToken is false (or it is unset and the
 *   ServiceAccount's is false), a projected volume `kube-api-access-xxxxx` (a bound token
 *   of 3607 s, the cluster CA from ConfigMap kube-root-ca.crt, the namespace) is mounted
 *   read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container and init
 *   container that has no mount at that path yet; an existing `kube-api-access-*` volume is
 *   reused (so a second run mounts it into containers added since, e.g. by a webhook);
 * - a pod without imagePullSecrets gets the ServiceAccount's.
 * Mirror pods are left alone. `lookup` finds a ServiceAccount; `default` exists in every
 * namespace even when none was stored (the controller that creates it is not emulated).
 */
export function serviceAccountAdmissionStep(lookup: (namespace: string, name: string) => ServiceAccountLike | undefined): AdmissionStep {
  return (obj, attributes) => {
    if (attributes.operation !== 'CREATE' || attributes.group !== '' || attributes.resource !== 'pods') return obj;
    const spec = obj.spec as PodSpecLike | undefined;
    // A malformed pod is left for validation to report.
    if (typeof spec !== 'object' || spec === null || !Array.isArray(spec.containers)) return obj;
    if (obj.metadata.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) return obj;
    const namespace = attributes.namespace ?? 'default';
    if (!spec.serviceAccountName) spec.serviceAccountName = DEFAULT_SERVICE_ACCOUNT;
    const name = spec.serviceAccountName;
    const serviceAccount = lookup(namespace, name) ?? (name === DEFAULT_SERVICE_ACCOUNT ? { metadata: { name, namespace } } : undefined);
    if (!serviceAccount) {
      throw admissionForbidden(
        { resource: 'pods', group: '', name: podNameForErrors(obj) },
        `error looking up service account ${namespace}/${name}: serviceaccount "${name}" not found`,
      );
    }
    if (shouldAutomount(serviceAccount, spec)) mountServiceAccountToken(spec);
    if (!spec.imagePullSecrets?.length && serviceAccount.imagePullSecrets?.length) {
      spec.imagePullSecrets = serviceAccount.imagePullSecrets.map((s) => ({ name: s.name ?? '' }));
    }
    return obj;
  };
}

/** admission.NewForbidden names the object by its name, else its generateName, else "Unknown". */
function podNameForErrors(obj: StoredObject): string {
  return obj.metadata.name || obj.metadata.generateName || 'Unknown';
}

/** The pod's preference wins, then the ServiceAccount's; true when neither says. */
function shouldAutomount(serviceAccount: ServiceAccountLike, spec: PodSpecLike): boolean {
  return spec.automountServiceAccountToken ?? serviceAccount.automountServiceAccountToken ?? true;
}

function mountServiceAccountToken(spec: PodSpecLike): void {
  const existing = (spec.volumes ?? []).find((v) => typeof v.name === 'string' && v.name.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX));
  const volumeName = existing?.name ?? SERVICE_ACCOUNT_VOLUME_PREFIX + randomNameSuffix();
  let needsVolume = false;
  for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    // A container that mounts something at the path already keeps its own.
    if ((container.volumeMounts ?? []).some((m) => m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH)) continue;
    container.volumeMounts = [...(container.volumeMounts ?? []), { name: volumeName, readOnly: true, mountPath: SERVICE_ACCOUNT_MOUNT_PATH }];
    needsVolume = true;
  }
  if (!existing && needsVolume) spec.volumes = [...(spec.volumes ?? []), serviceAccountTokenVolume(volumeName)];
}

/** TokenVolumeSource: what a kube-api-access volume holds, with the defaultMode the plugin sets explicitly. */
export function serviceAccountTokenVolume(name: string): { name: string; projected: object } {
  return {
    name,
    projected: {
      defaultMode: 420,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}
