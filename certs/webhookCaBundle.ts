import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';

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
