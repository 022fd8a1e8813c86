import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { POD_NAME_EXTRA } from '../support/apiEmulator/index.js';
import { renderKustomization } from '../support/kustomize.js';
import { exampleWorkloadPod, LocalCluster, roleLabel } from '../support/localCluster.js';
import { repoRoot } from '../support/repoRoot.js';

// What the e2e tests and `make demo` rely on LocalCluster for, beyond the election itself:
// deploy/'s ValidatingAdmissionPolicies are in force, and each sidecar runs with a token
// bound to its own pod, as a kubelet would give it.

let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await LocalCluster.start();
}, 60_000);

afterAll(async () => {
  await cluster?.close();
}, 30_000);

describe('LocalCluster', () => {
  it('installs the ValidatingAdmissionPolicies of deploy/ and their bindings', async () => {
    const rendered = renderKustomization(join(repoRoot, 'deploy'));
    const names = (kind: string) => rendered.filter((o) => o.kind === kind).map((o) => o.metadata.name).sort();
    const admission = cluster.emulator.kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    expect((await admission.listValidatingAdmissionPolicy()).items.map((p) => p.metadata?.name).sort()).toEqual(names('ValidatingAdmissionPolicy'));
    expect((await admission.listValidatingAdmissionPolicyBinding()).items.map((b) => b.metadata?.name).sort()).toEqual(names('ValidatingAdmissionPolicyBinding'));
    expect(names('ValidatingAdmissionPolicy')).toContain('zkleader-election-pods');
  });

  it("runs a sidecar as its pod's service account, with a token bound to the pod, which labels its pod and nothing more", async () => {
    const { namespace, pod } = exampleWorkloadPod('4s');
    const own = await cluster.createPod(namespace, pod);
    const other = await cluster.createPod(namespace, pod);
    const running = await cluster.start(own);
    const name = own.metadata?.name ?? '';

    const kc = new KubeConfig();
    kc.loadFromFile(running.process.kubeconfig ?? '');
    const tokenFile = (kc.getCurrentUser()?.authProvider as { config: { tokenFile: string } }).config.tokenFile;
    const user = cluster.emulator.userOf(readFileSync(tokenFile, 'utf8'));
    expect(user?.username).toBe(`system:serviceaccount:${namespace}:${own.spec?.serviceAccountName ?? ''}`);
    expect(user?.extra?.[POD_NAME_EXTRA]).toEqual([name]);

    // It labels its own pod through the policy.
    const leadership = await cluster.waitForLeadership(namespace);
    expect(leadership.leader).toBe(name);

    // The same token may not label the other pod leader.
    const refused = await kc
      .makeApiClient(CoreV1Api)
      .patchNamespacedPod({ name: other.metadata?.name ?? '', namespace, body: { metadata: { labels: { [roleLabel]: 'leader' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
      .then(
        () => undefined,
        (err: unknown) => (err instanceof ApiException ? err.code : err),
      );
    expect(refused).toBe(403);
    expect(cluster.emulator.getPod(namespace, other.metadata?.name ?? '')?.metadata?.labels?.[roleLabel]).toBe('follower');
  }, 45_000);
});
