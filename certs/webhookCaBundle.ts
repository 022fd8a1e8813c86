import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import { readableCertificates, type CertificateInfo } from './certificateInfo.js';

/**
 * JSON patch operations that set `caBundlePem` on every webhook entry whose caBundle
 * differs; [] when all already match (then nothing is written). Each replacement is
 * guarded by a `test` of the entry's name, so a concurrent reordering fails the patch
 * instead of touching the wrong entry.
 */
export function caBundlePatch(config: V1MutatingWebhookConfiguration, caBundlePem: string): Operation[] {
  const wanted = Buffer.from(caBundlePem, 'utf8').toString('base64');
  const ops: Operation[] = [];
  (config.webhooks ?? []).forEach((webhook, i) => {
    if (webhook.clientConfig.caBundle === wanted) return;
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: webhook.name });
    ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: wanted });
  });
  return ops;
}

/**
 * The certificates the webhook configuration's entries trust now, each once, skipping
 * what does not parse: the API server verifies the served certificate against these.
 */
export function configuredCertificates(config: V1MutatingWebhookConfiguration): CertificateInfo[] {
  const seen = new Set<string>();
  return (config.webhooks ?? []).flatMap((webhook) => {
    const caBundle = webhook.clientConfig.caBundle;
    if (caBundle === undefined || caBundle === '') return [];
    const text = Buffer.from(caBundle, 'base64').toString('utf8');
    return readableCertificates(text, `caBundle of webhook ${webhook.name} of MutatingWebhookConfiguration ${config.metadata?.name ?? ''}`).filter(
      (ca) => !seen.has(ca.fingerprint) && seen.add(ca.fingerprint),
    );
  });
}
