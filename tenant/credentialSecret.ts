import { ApiException, CoreV1Api, KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { apiMessage } from '../sidecar/kubernetesApiError.js';
import { UsageError } from '../cli/flags.js';
import { CREDENTIAL_SECRET_KEY, CREDENTIAL_SECRET_NAME } from '../src/buildVolumes.js';
import { formatCredential, parseCredential, type DigestCredential } from '../zookeeper/credentials.js';
import { TenantError } from './subcommand.js';

/*
 * The Secret `zkleader-zookeeper` (key `credential`) in a tenant namespace: what the webhook
 * mounts into the sidecar with zookeeperAuth: required (src/buildVolumes.ts).
 */

export const managedByLabel = { 'app.kubernetes.io/managed-by': 'zkleader' } as const;

/** `ns/zkleader-zookeeper`, for messages. */
export function secretRef(namespace: string): string {
  return `Secret ${namespace}/${CREDENTIAL_SECRET_NAME}`;
}

/**
 * The Secret manifest. `data` (base64), not `stringData`: it is the form the API stores, so
 * `kubectl apply` (client-side and --server-side) and `kubectl diff` see no change on a
 * second apply, and a key is never left behind by a write-only field.
 */
export function credentialSecretManifest(namespace: string, credential: DigestCredential): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: CREDENTIAL_SECRET_NAME, namespace, labels: { ...managedByLabel } },
    type: 'Opaque',
    data: { [CREDENTIAL_SECRET_KEY]: Buffer.from(formatCredential(credential), 'utf8').toString('base64') },
  };
}

/** What the stored Secret holds: a credential, or why it cannot be used (never the password). */
export type StoredCredential = { readonly credential: DigestCredential } | { readonly problem: string };

/** The credential in a stored Secret of `namespace`, checked to be `user`'s. */
export function storedCredential(secret: V1Secret | undefined, namespace: string, user: string): StoredCredential {
  const ref = secretRef(namespace);
  if (!secret) return { problem: `${ref} does not exist` };
  const encoded = secret.data?.[CREDENTIAL_SECRET_KEY];
  if (encoded === undefined) return { problem: `${ref} has no key ${CREDENTIAL_SECRET_KEY}` };
  try {
    const credential = parseCredential(Buffer.from(encoded, 'base64').toString('utf8'), `${ref} key ${CREDENTIAL_SECRET_KEY}`);
    if (credential.user !== user) return { problem: `${ref} does not hold a credential of ${user}` };
    return { credential };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

/** One line for a failed API request: the status and the API's own message. */
export function describeApiError(err: unknown): string {
  if (err instanceof ApiException) {
    const message = apiMessage(err);
    return message ? `HTTP ${err.code}: ${message}` : `HTTP ${err.code}`;
  }
  return (err as Error).message ?? String(err);
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/**
 * The Secrets of tenant namespaces through the Kubernetes API: the in-cluster service
 * account, or a kubeconfig file.
 */
export class CredentialSecrets {
  private constructor(
    private readonly core: CoreV1Api,
    private readonly timeoutMs: number,
  ) {}

  /** Outside a cluster without --kubeconfig there is no API to talk to: a usage error naming the way out. */
  static connect(kubeconfig: string | undefined, env: NodeJS.ProcessEnv, timeoutMs: number, alternative: string): CredentialSecrets {
    const kc = new KubeConfig();
    if (kubeconfig !== undefined) {
      try {
        kc.loadFromFile(kubeconfig);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new UsageError(`--kubeconfig: cannot load ${kubeconfig}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message.split('\n')[0]}`);
      }
      if (!kc.getCurrentCluster()) throw new UsageError(`--kubeconfig: ${kubeconfig} names no current cluster`);
    } else {
      if (!env.KUBERNETES_SERVICE_HOST) {
        throw new UsageError(`--kubeconfig is required outside a cluster (no KUBERNETES_SERVICE_HOST for the in-cluster service account); ${alternative}`);
      }
      kc.loadFromCluster();
    }
    return new CredentialSecrets(kc.makeApiClient(CoreV1Api), timeoutMs);
  }

  /** The stored Secret, or undefined when there is none. */
  async read(namespace: string): Promise<V1Secret | undefined> {
    try {
      return await this.withTimeout(this.core.readNamespacedSecret({ name: CREDENTIAL_SECRET_NAME, namespace }), `read ${secretRef(namespace)}`);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      if (err instanceof TenantError) throw err;
      throw new TenantError(`cannot read ${secretRef(namespace)}: ${describeApiError(err)}`);
    }
  }

  /**
   * Makes the Secret hold `credential`: created when missing, replaced (with the
   * resourceVersion that was read, so a concurrent change fails instead of being lost) when
   * it differs, left alone when it holds it already.
   */
  async write(namespace: string, existing: V1Secret | undefined, credential: DigestCredential): Promise<'created' | 'replaced' | 'unchanged'> {
    const wanted = credentialSecretManifest(namespace, credential);
    const value = wanted.data?.[CREDENTIAL_SECRET_KEY] as string;
    try {
      if (!existing) {
        await this.withTimeout(this.core.createNamespacedSecret({ namespace, body: wanted }), `create ${secretRef(namespace)}`);
        return 'created';
      }
      if (existing.data?.[CREDENTIAL_SECRET_KEY] === value) return 'unchanged';
      const body: V1Secret = {
        ...existing,
        metadata: { ...existing.metadata, labels: { ...existing.metadata?.labels, ...managedByLabel } },
        data: { ...existing.data, [CREDENTIAL_SECRET_KEY]: value },
      };
      delete body.stringData;
      await this.withTimeout(this.core.replaceNamespacedSecret({ name: CREDENTIAL_SECRET_NAME, namespace, body }), `replace ${secretRef(namespace)}`);
      return 'replaced';
    } catch (err) {
      if (err instanceof TenantError) throw err;
      const hint = statusOf(err) === 409 ? ' (it changed meanwhile; run the command again)' : statusOf(err) === 404 ? ` (does namespace ${namespace} exist?)` : '';
      throw new TenantError(`cannot write ${secretRef(namespace)}: ${describeApiError(err)}${hint}`);
    }
  }

  /** Deletes the Secret; false when there was none. */
  async delete(namespace: string): Promise<boolean> {
    try {
      await this.withTimeout(this.core.deleteNamespacedSecret({ name: CREDENTIAL_SECRET_NAME, namespace }), `delete ${secretRef(namespace)}`);
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      if (err instanceof TenantError) throw err;
      throw new TenantError(`cannot delete ${secretRef(namespace)}: ${describeApiError(err)}`);
    }
  }

  private withTimeout<T>(request: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TenantError(`${what}: no answer from the Kubernetes API within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([request, timeout]).finally(() => clearTimeout(timer));
  }
}
