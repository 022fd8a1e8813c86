import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';

export interface KubeconfigTarget {
  server: string;
  token: string;
  namespace: string;
}

/** The kubeconfig document a client needs to reach the emulator: one cluster, one token user, one context. */
export function kubeconfigDocument(t: KubeconfigTarget): object {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    // client-node 2.x refuses plain http unless TLS verification is marked skipped.
    clusters: [{ name: 'emulator', cluster: { server: t.server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'emulator', user: { token: t.token } }],
    contexts: [{ name: 'emulator', context: { cluster: 'emulator', user: 'emulator', namespace: t.namespace } }],
    'current-context': 'emulator',
  };
}

/** Writes the kubeconfig to a fresh temporary directory and returns the file's path. */
export async function writeKubeconfig(t: KubeconfigTarget): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'zkleader-kubeconfig-'));
  const path = join(dir, 'kubeconfig');
  await writeFile(path, stringify(kubeconfigDocument(t)), { mode: 0o600 });
  return path;
}

export function kubeConfigFor(t: KubeconfigTarget): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(JSON.stringify(kubeconfigDocument(t)));
  return kc;
}
