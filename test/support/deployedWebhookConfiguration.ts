import { join } from 'node:path';
import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { renderKustomization } from './kustomize.js';
import { repoRoot } from './repoRoot.js';

/**
 * The MutatingWebhookConfiguration that `kubectl apply -k deploy` creates, with every
 * entry's caBundle set as the certificates Job would set it (base64 of the CA's PEM).
 */
export function deployedWebhookConfiguration(caBundle: string): V1MutatingWebhookConfiguration {
  const found = renderKustomization(join(repoRoot, 'deploy')).filter((o) => o.kind === 'MutatingWebhookConfiguration');
  if (found.length !== 1) throw new Error(`deploy/ renders ${found.length} MutatingWebhookConfigurations; expected exactly one`);
  const config = structuredClone(found[0]) as unknown as V1MutatingWebhookConfiguration;
  for (const webhook of config.webhooks ?? []) webhook.clientConfig.caBundle = caBundle;
  return config;
}

/** The Service deploy/ names in the webhook configuration (the first entry's; all entries name the same one). */
export function deployedWebhookService(config: V1MutatingWebhookConfiguration): { namespace: string; service: string } {
  const service = config.webhooks?.[0]?.clientConfig.service;
  if (!service) throw new Error('the webhook configuration of deploy/ names no Service');
  return { namespace: service.namespace, service: service.name };
}
