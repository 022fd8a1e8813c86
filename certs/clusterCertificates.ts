import type { AdmissionregistrationV1Api, CoreV1Api, V1MutatingWebhookConfiguration, V1Secret } from '@kubernetes/client-node';
import { ApiException, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { createCertificateAuthority, createServingCertificate } from './certificateAuthority.js';
import { readCertificate } from './certificateInfo.js';
import { buildCertificateSecret, bundledCertificates, caBundlePem, readCertificateSecret, secretDiffers, type SecretContent } from './certificateSecret.js';
import { planRotation } from './rotationPlan.js';
import { caBundlePatch, configuredCertificates } from './webhookCaBundle.js';

export interface ClusterCertificatesTarget {
  readonly namespace: string;
  readonly secretName: string;
  /** The MutatingWebhookConfiguration whose entries get the caBundle; undefined: the Secret only. */
  readonly webhookConfigName: string | undefined;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly servingValidityDays: number;
  readonly graceMs: number;
}

export interface ClusterCertificatesResult {
  readonly secret: 'created' | 'updated' | 'unchanged';
  readonly webhookEntriesPatched: number;
  readonly reasons: readonly string[];
  readonly content: SecretContent;
}

export interface KubernetesApis {
  readonly core: CoreV1Api;
  readonly admission: AdmissionregistrationV1Api;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

async function readSecret(apis: KubernetesApis, target: ClusterCertificatesTarget): Promise<V1Secret | undefined> {
  try {
    return await apis.core.readNamespacedSecret({ name: target.secretName, namespace: target.namespace });
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

async function desiredContent(
  stored: V1Secret | undefined,
  config: V1MutatingWebhookConfiguration | undefined,
  target: ClusterCertificatesTarget,
  now: Date,
): Promise<{ content: SecretContent; reasons: readonly string[] }> {
  const reading = stored ? readCertificateSecret(stored) : undefined;
  const current = reading?.kind === 'stored' ? reading.certificates : undefined;
  const missing =
    reading?.kind === 'unusable'
      ? `${reading.reason}; issuing a new CA and serving certificate`
      : `Secret ${target.namespace}/${target.secretName} does not exist; issuing a CA and serving certificate`;
  // A hand-edited Secret (no ca.key, say) is unusable, but the webhook pods still serve
  // the certificate they loaded: what the Secret and the webhook configuration trusted
  // so far stays trusted for the grace period, as in a normal CA rotation.
  const previousCas = current ? [] : [...(stored ? bundledCertificates(stored) : []), ...(config ? configuredCertificates(config) : [])];
  const plan = planRotation(current, { now, dnsNames: target.dnsNames, ipAddresses: target.ipAddresses, graceMs: target.graceMs }, missing, previousCas);
  const ca = plan.issueCa || !current ? await createCertificateAuthority({ now }) : { certPem: current.signingCa.pem, keyPem: current.caKeyPem };
  const serving =
    plan.issueServing || !current
      ? await createServingCertificate(ca, {
          dnsNames: [...target.dnsNames],
          ipAddresses: [...target.ipAddresses],
          validityDays: target.servingValidityDays,
          now,
        })
      : { certPem: current.serving.pem, keyPem: current.servingKeyPem };
  const bundle = caBundlePem(readCertificate(ca.certPem, 'the signing CA'), plan.keptCas);
  return {
    content: { servingCertPem: serving.certPem, servingKeyPem: serving.keyPem, caBundlePem: bundle, caKeyPem: ca.keyPem, caRotatedAt: plan.caRotatedAt },
    reasons: plan.reasons,
  };
}

async function readWebhookConfiguration(apis: KubernetesApis, name: string): Promise<V1MutatingWebhookConfiguration> {
  try {
    return await apis.admission.readMutatingWebhookConfiguration({ name });
  } catch (err) {
    if (statusOf(err) === 404) throw new Error(`MutatingWebhookConfiguration ${name} does not exist; apply deploy/ first (kubectl apply -k deploy)`, { cause: err });
    throw err;
  }
}

async function patchWebhookConfiguration(apis: KubernetesApis, name: string, config: V1MutatingWebhookConfiguration, bundle: string): Promise<number> {
  const ops = caBundlePatch(config, bundle);
  if (ops.length === 0) return 0;
  await apis.admission.patchMutatingWebhookConfiguration({ name, body: ops }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
  return ops.length / 2;
}

async function reconcileOnce(apis: KubernetesApis, target: ClusterCertificatesTarget, now: Date): Promise<ClusterCertificatesResult> {
  const stored = await readSecret(apis, target);
  const config = target.webhookConfigName ? await readWebhookConfiguration(apis, target.webhookConfigName) : undefined;
  const { content, reasons } = await desiredContent(stored, config, target, now);
  // The webhook configuration trusts the new CA before any pod can serve a certificate it signed.
  const webhookEntriesPatched = target.webhookConfigName && config ? await patchWebhookConfiguration(apis, target.webhookConfigName, config, content.caBundlePem) : 0;
  const desired = buildCertificateSecret(target.secretName, target.namespace, content, stored);
  if (!stored) {
    await apis.core.createNamespacedSecret({ namespace: target.namespace, body: desired });
    return { secret: 'created', webhookEntriesPatched, reasons, content };
  }
  if (!secretDiffers(stored, desired)) return { secret: 'unchanged', webhookEntriesPatched, reasons, content };
  // PUT carries the resourceVersion that was read: a concurrent writer makes it fail with 409.
  await apis.core.replaceNamespacedSecret({ name: target.secretName, namespace: target.namespace, body: desired });
  return { secret: 'updated', webhookEntriesPatched, reasons, content };
}

const attempts = 3;

/**
 * Brings the Secret and the caBundle of the webhook configuration to a consistent,
 * fresh state. When another run wrote the Secret in between (409 Conflict, or 409
 * AlreadyExists on create), starts over from what that run stored, so the caBundle
 * ends up matching the Secret that is really served.
 */
export async function reconcileClusterCertificates(
  apis: KubernetesApis,
  target: ClusterCertificatesTarget,
  clock: () => Date,
  log: Logger,
): Promise<ClusterCertificatesResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await reconcileOnce(apis, target, clock());
      log.info(
        { secret: `${target.namespace}/${target.secretName}`, action: result.secret, webhookEntriesPatched: result.webhookEntriesPatched, reasons: result.reasons },
        'certificates reconciled',
      );
      return result;
    } catch (err) {
      if (statusOf(err) !== 409 || attempt >= attempts) throw err;
      log.info({ secret: `${target.namespace}/${target.secretName}`, attempt }, 'the Secret changed while rotating; starting over from the stored one');
    }
  }
}
