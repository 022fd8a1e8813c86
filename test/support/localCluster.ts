import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Pod,
  type V1ServiceAccount,
  type V1ValidatingAdmissionPolicy,
  type V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import type { LeaderDocument } from '../../sidecar/leaderFile.js';
import { ApiEmulator } from './apiEmulator/index.js';
import { deployedWebhookConfiguration, deployedWebhookService } from './deployedWebhookConfiguration.js';
import { renderKustomization } from './kustomize.js';
import { runPod, type RunningPod } from './podRunner.js';
import { repoRoot, zkleaderBin } from './repoRoot.js';
import { startWebhookProcess, type WebhookProcess } from './webhookProcess.js';
import { formatCredential } from '../../zookeeper/credentials.js';
import { testAdminCredential, ZooKeeperEnsemble } from './zookeeperEnsemble.js';

export const roleLabel = 'zkleader.io/role';
/** The tenant's credential Secret that `zkleader tenant add` writes (README "Security model"). */
const tenantSecretName = 'zkleader-zookeeper';
export const epochAnnotation = 'zkleader.io/leader-epoch';

export interface LocalClusterOptions {
  /** One line per step, for the demo's progress output. */
  progress?: (line: string) => void;
  /** Logger of the emulator's admission chain (default: silent). */
  log?: Logger;
  /**
   * One election across clusters: this cluster uses the ZooKeeper ensemble of `sharedWith`
   * (neither started nor closed here) and, with tenancy, gets the tenant's Secret copied from
   * it, as an operator copies it to a second cluster (the password cannot be recovered from
   * ZooKeeper, so `tenant add` there would refuse).
   */
  sharedWith?: LocalCluster;
  /** Settings over deploy/webhook-config.yaml (e.g. `cluster: east`). */
  webhookConfig?: Record<string, unknown>;
}

/** A pod that runs: its stored object at start and the process of its sidecar. */
export interface RunningWorkloadPod {
  readonly name: string;
  readonly podIP: string;
  readonly process: RunningPod;
}

/** Who leads, as the API and the pods' files agree. */
export interface Leadership {
  leader: string;
  epoch: string;
}

/**
 * One machine standing in for a cluster: a 3-node ZooKeeper, the Kubernetes API
 * emulator with kube-apiserver's webhook stage, the real `zkleader webhook` with fresh
 * certificates, registered with the MutatingWebhookConfiguration of deploy/, the
 * ValidatingAdmissionPolicies of deploy/ with their bindings, and a "kubelet" that runs
 * each admitted pod's sidecar with the pod runner, giving it the pod's own projected
 * service-account token (bound to the pod), so the sidecar labels pods as its pod's
 * service account, under deploy/'s policy. What the e2e tests and `make demo` share.
 */
export class LocalCluster {
  private readonly running = new Map<string, RunningWorkloadPod>();
  private nextHostOctet = 10;
  /** False when the ensemble is another cluster's (LocalClusterOptions.sharedWith). */
  private ownsZooKeeper = true;

  private constructor(
    readonly zookeeper: ZooKeeperEnsemble,
    readonly emulator: ApiEmulator,
    readonly webhook: WebhookProcess,
    /** The administrator's kubeconfig file. */
    readonly kubeconfig: string,
    readonly core: CoreV1Api,
    /** The kubelet's credentials: what the pod runner asks for the pods' projected tokens with. */
    private readonly kubelet: KubeConfig,
  ) {}

  static async start(opts: LocalClusterOptions = {}): Promise<LocalCluster> {
    const progress = opts.progress ?? (() => undefined);
    const parts: { zookeeper?: ZooKeeperEnsemble; emulator?: ApiEmulator; webhook?: WebhookProcess } = {};
    const shared = opts.sharedWith?.zookeeper;
    try {
      if (shared) {
        parts.zookeeper = shared;
        progress(`sharing the ZooKeeper ensemble at ${shared.connectString}`);
      } else {
        progress('starting a 3-node ZooKeeper ensemble (Apache ZooKeeper, one JVM per server)');
        parts.zookeeper = await ZooKeeperEnsemble.start({ size: 3 });
        progress(`ZooKeeper serving at ${parts.zookeeper.connectString}`);
      }
      parts.emulator = await ApiEmulator.start();
      progress(`Kubernetes API emulator at ${parts.emulator.url}`);
      // The example's ServiceAccount: the emulator's ServiceAccount admission refuses pods naming a missing one.
      for (const sa of renderKustomization(join(repoRoot, 'deploy', 'example')).filter((o) => o.kind === 'ServiceAccount')) {
        parts.emulator.putServiceAccount(sa as V1ServiceAccount);
      }
      const service = deployedWebhookService(deployedWebhookConfiguration(''));
      const config = { ...(parseYaml(webhookConfigYaml()) as Record<string, unknown>), ...opts.webhookConfig };
      if (config.zookeeperAuth === 'required' && opts.sharedWith) {
        const { namespace } = exampleWorkloadPod();
        const secret = await opts.sharedWith.core.readNamespacedSecret({ namespace, name: tenantSecretName });
        await parts.emulator.kubeConfig().makeApiClient(CoreV1Api).createNamespacedSecret({
          namespace,
          body: { metadata: { name: tenantSecretName, namespace, labels: secret.metadata?.labels ?? {} }, type: secret.type ?? 'Opaque', data: secret.data ?? {} },
        });
        progress(`$ kubectl get secret -n ${namespace} ${tenantSecretName} -o yaml | kubectl apply -f -   (the tenant's credential, copied from the first cluster)`);
      } else if (config.zookeeperAuth === 'required') {
        // deploy/ runs with tenancy: the example's namespace becomes a tenant first, with the
        // real command, as README's deploy steps do (its Secret lands in the emulator).
        const { namespace } = exampleWorkloadPod();
        const adminFile = join(parts.zookeeper.dir, 'admin.credential');
        writeFileSync(adminFile, formatCredential(testAdminCredential), { mode: 0o600 });
        const args = ['tenant', 'add', namespace, '--zookeeper', parts.zookeeper.connectString, '--admin-credential-file', adminFile, '--kubeconfig', await parts.emulator.kubeconfigFile()];
        const { stdout } = await promisify(execFile)(zkleaderBin, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
        progress(`$ zkleader tenant add ${namespace} --admin-credential-file ...   (zookeeperAuth: required in deploy/webhook-config.yaml)`);
        for (const line of stdout.trim().split('\n')) progress(`  ${line}`);
      }
      parts.webhook = await startWebhookProcess({ ...service, config: { ...config, zookeeper: parts.zookeeper.connectString } });
      progress(`zkleader webhook serving https://${service.service}.${service.namespace}.svc (127.0.0.1:${parts.webhook.port}) with a fresh CA`);
      const baseUrl = parts.webhook.baseUrl;
      parts.emulator.useWebhookAdmission({
        serviceResolver: (namespace, name) => {
          if (namespace !== service.namespace || name !== service.service) throw new Error(`no Service ${namespace}/${name} on this machine`);
          return baseUrl;
        },
        log: opts.log ?? pino({ level: 'silent' }),
      });
      const kc = parts.emulator.kubeConfig();
      const admission = kc.makeApiClient(AdmissionregistrationV1Api);
      const webhookConfiguration = deployedWebhookConfiguration(parts.webhook.caBundle);
      await admission.createMutatingWebhookConfiguration({ body: webhookConfiguration });
      progress(`MutatingWebhookConfiguration ${webhookConfiguration.metadata?.name ?? ''} from deploy/ registered (caBundle patched in)`);
      await installDeployedPolicies(admission);
      const cluster = new LocalCluster(parts.zookeeper, parts.emulator, parts.webhook, await parts.emulator.kubeconfigFile(), kc.makeApiClient(CoreV1Api), kc);
      cluster.ownsZooKeeper = !shared;
      return cluster;
    } catch (err) {
      await parts.webhook?.stop();
      await parts.emulator?.close();
      if (!shared) await parts.zookeeper?.close();
      throw err;
    }
  }

  /** Creates a pod through the API (and so through admission); returns what was stored. */
  createPod(namespace: string, pod: V1Pod): Promise<V1Pod> {
    return this.core.createNamespacedPod({ namespace, body: pod });
  }

  /**
   * What the kubelet does for an admitted pod: reports it Running with a pod IP (a
   * distinct 127.0.0.x), then starts its injected sidecar with the pod runner, its token
   * volume filled with a token bound to the pod.
   */
  async start(pod: V1Pod): Promise<RunningWorkloadPod> {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? 'default';
    const podIP = `127.0.0.${this.nextHostOctet++}`;
    const withStatus = await this.core.patchNamespacedPodStatus(
      { name, namespace, body: { status: { phase: 'Running', podIP, podIPs: [{ ip: podIP }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const process = await runPod(withStatus, { kubelet: this.kubelet, podIP });
    const running = { name, podIP, process };
    this.running.set(name, running);
    return running;
  }

  pods(): RunningWorkloadPod[] {
    return [...this.running.values()];
  }

  /** `kubectl delete pod`: the kubelet stops the sidecar (SIGTERM, grace period), then the API object goes. */
  async deletePod(namespace: string, name: string): Promise<void> {
    const running = this.running.get(name);
    this.running.delete(name);
    await running?.process.stop(5000);
    await running?.process.dispose();
    try {
      await this.core.deleteNamespacedPod({ name, namespace });
    } catch (err) {
      // A started cold standby's sidecar deletes its own pod when it stops: gone already.
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }

  /**
   * The kubelet's side of pods deleted through the API by someone else (a cold standby's
   * sidecar deleting its own pod): their sidecars are stopped (SIGTERM, grace period) and
   * they leave this "node". Returns the names reaped.
   */
  async reapDeleted(namespace: string): Promise<string[]> {
    const gone = [...this.running.values()].filter((p) => p.process.namespace === namespace && !this.emulator.getPod(namespace, p.name));
    for (const pod of gone) {
      this.running.delete(pod.name);
      await pod.process.stop(5000);
      await pod.process.dispose();
    }
    return gone.map((p) => p.name);
  }

  /**
   * A node lost with the pod on it: the sidecar dies by SIGKILL, without stepping
   * down, and the pod object stays in the API with whatever labels it had.
   */
  async crashPod(name: string): Promise<void> {
    const running = this.running.get(name);
    this.running.delete(name);
    await running?.process.dispose();
  }

  /** Pods of the namespace whose zkleader.io/role label says leader, as a client sees them. */
  async labelledLeaders(namespace: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector: `${roleLabel}=leader` })).items;
  }

  /** Every running pod's leader.json (undefined before its first write). */
  async leaderFiles(): Promise<Map<string, LeaderDocument | undefined>> {
    const files = new Map<string, LeaderDocument | undefined>();
    for (const pod of this.running.values()) files.set(pod.name, (await pod.process.leaderJson()) as LeaderDocument | undefined);
    return files;
  }

  /**
   * Until exactly one pod carries the leader label, with the epoch annotation, and
   * every running pod's leader file names it with that epoch; `notBefore` rejects an
   * outcome with an epoch not above it (the old leader's).
   */
  async waitForLeadership(namespace: string, opts: { timeoutMs?: number; notBefore?: string } = {}): Promise<Leadership> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    let last = 'nothing checked yet';
    while (Date.now() < deadline) {
      const leaders = await this.labelledLeaders(namespace);
      const files = await this.leaderFiles();
      const [leader] = leaders;
      const epoch = leader?.metadata?.annotations?.[epochAnnotation];
      const name = leader?.metadata?.name ?? '';
      const agreeing = [...files.values()].filter((f) => f?.leader?.pod === name && f.epoch === epoch && f.state !== 'unknown');
      if (leaders.length === 1 && epoch !== undefined && agreeing.length === files.size && this.running.has(name)) {
        if (opts.notBefore === undefined || BigInt(epoch) > BigInt(opts.notBefore)) return { leader: name, epoch };
      }
      last = `${leaders.length} labelled leader(s) [${leaders.map((p) => p.metadata?.name).join(', ')}], ${agreeing.length} of ${files.size} leader files agree`;
      await sleep(100);
    }
    const logs = this.pods().map((p) => `--- ${p.name}\n${p.process.logs().slice(-2000)}`).join('\n');
    throw new Error(`no agreed leader in ${namespace} within the deadline: ${last}\n${logs}`);
  }

  /** Stops every sidecar, the webhook, the emulator and the ZooKeeper JVMs (unless shared: their owner's). Safe to call twice. */
  async close(): Promise<void> {
    await Promise.all([...this.running.values()].map((p) => p.process.dispose()));
    this.running.clear();
    await this.webhook.stop();
    await this.emulator.close();
    if (this.ownsZooKeeper) await this.zookeeper.close();
  }
}

/** `kubectl apply -k deploy` for the ValidatingAdmissionPolicies and their bindings: policies first, as kubectl orders them. */
async function installDeployedPolicies(admission: AdmissionregistrationV1Api): Promise<void> {
  const rendered = renderKustomization(join(repoRoot, 'deploy'));
  for (const policy of rendered.filter((o) => o.kind === 'ValidatingAdmissionPolicy')) {
    await admission.createValidatingAdmissionPolicy({ body: policy as unknown as V1ValidatingAdmissionPolicy });
  }
  for (const binding of rendered.filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding')) {
    await admission.createValidatingAdmissionPolicyBinding({ body: binding as unknown as V1ValidatingAdmissionPolicyBinding });
  }
}

/** The webhook's --config in deploy/ (the kustomization makes it the ConfigMap the webhook reads). */
function webhookConfigYaml(): string {
  return readFileSync(join(repoRoot, 'deploy', 'webhook-config.yaml'), 'utf8');
}

/**
 * The pod template of deploy/example's Deployment as its ReplicaSet would stamp out a
 * pod (generateName, pod-template-hash), with a shorter session timeout for a quick
 * failover on one machine.
 */
export function exampleWorkloadPod(sessionTimeout = '4s'): { namespace: string; pod: V1Pod } {
  const text = readFileSync(join(repoRoot, 'deploy', 'example', 'deployment.yaml'), 'utf8');
  const deployment = parseYaml(text) as { metadata: { name: string; namespace: string }; spec: { template: V1Pod } };
  const template = structuredClone(deployment.spec.template);
  const hash = '6b8f7d9c5';
  template.metadata = {
    ...template.metadata,
    generateName: `${deployment.metadata.name}-${hash}-`,
    labels: { ...template.metadata?.labels, 'pod-template-hash': hash },
    annotations: { ...template.metadata?.annotations, 'zkleader.io/session-timeout': sessionTimeout },
  };
  return { namespace: deployment.metadata.namespace, pod: template };
}
