import { describe, expect, it } from '@jest/globals';
import type { V1Container, V1Deployment, V1MutatingWebhookConfiguration, V1Pod, V1PodSpec, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { CronJob, Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { certsFlags } from '../../certs/certsCommand.js';
import { parseFlags } from '../../cli/flags.js';
import { main } from '../../cli/main.js';
import { leaseConditionWarnings } from '../../zookeeper/leaseCondition.js';
import { sidecarFlags } from '../../sidecar/sidecarFlags.js';
import { parseInjectorConfig } from '../../src/config.js';
import { inject } from '../../src/inject.js';
import { validatePod } from '../support/apiEmulator/podValidation.js';
import { policyExemptResources } from '../support/apiEmulator/validatingAdmissionPolicy.js';
import { type KubernetesObject, podSpecsOf, renderKustomization } from '../support/kustomize.js';

const root = join(import.meta.dirname, '..', '..');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const image = `ghcr.io/zkleader/zkleader:v${version}`;

const rendered = {
  webhook: renderKustomization(join(root, 'deploy')),
  zookeeper: renderKustomization(join(root, 'deploy', 'zookeeper')),
  example: renderKustomization(join(root, 'deploy', 'example')),
};
const all = Object.entries(rendered).flatMap(([set, objects]) => objects.map((obj) => ({ set, obj })));

/** The kubernetes-models class (OpenAPI schema, offline) of every kind deploy/ uses. */
const schemas: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': ValidatingAdmissionPolicy,
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': ValidatingAdmissionPolicyBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
};
const clusterScoped = new Set(['Namespace', 'MutatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'ClusterRole', 'ClusterRoleBinding']);

function find<T>(objects: KubernetesObject[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found as unknown as T;
}

/** The ConfigMap the webhook Deployment mounts as its --config (generated, with a hash suffix). */
function webhookConfigMap(objects: KubernetesObject[] = rendered.webhook): { metadata: { name: string }; data: Record<string, string> } {
  const deployment = find<V1Deployment>(objects, 'Deployment', 'zkleader-webhook');
  const name = deployment.spec?.template.spec?.volumes?.find((v) => v.name === 'config')?.configMap?.name ?? '';
  return find(objects, 'ConfigMap', name);
}

/** The injector config the deployed webhook runs with: its --config file and the sidecar image from its environment. */
function deployedInjectorConfig(objects: KubernetesObject[] = rendered.webhook) {
  const container = find<V1Deployment>(objects, 'Deployment', 'zkleader-webhook').spec?.template.spec?.containers[0];
  const sidecarImage = container?.env?.find((e) => e.name === 'ZKLEADER_SIDECAR_IMAGE')?.value;
  return parseInjectorConfig(parseYaml(webhookConfigMap(objects).data['config.yaml'] ?? ''), version, sidecarImage);
}

function podTemplateLabels(obj: KubernetesObject): Record<string, string> | undefined {
  const spec = obj.spec as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined;
  return spec?.template?.metadata?.labels;
}

const workloads = all.filter(({ obj }) => podTemplateLabels(obj) !== undefined);

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function containersOf(spec: V1PodSpec): V1Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

describe('every rendered manifest', () => {
  it.each(all.map(({ set, obj }) => [`${set}: ${obj.kind}/${obj.metadata.name}`, obj] as const))('%s validates against the Kubernetes schema', (_name, obj) => {
    const Model = schemas[`${obj.apiVersion}/${obj.kind}`];
    if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}; add its kubernetes-models class`);
    expect(() => new Model(obj as never).validate()).not.toThrow();
    expect(obj.metadata.namespace === undefined).toBe(clusterScoped.has(obj.kind));
  });

  it('puts each set in one namespace of its own, which it creates', () => {
    for (const [set, objects] of Object.entries(rendered)) {
      const namespaces = new Set(objects.filter((o) => !clusterScoped.has(o.kind)).map((o) => o.metadata.namespace));
      expect([set, namespaces.size]).toEqual([set, 1]);
      const [namespace] = namespaces;
      expect(find<KubernetesObject>(objects, 'Namespace', namespace ?? '').metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    }
  });

  it('runs every container non-root, without privilege escalation or capabilities, on a read-only root filesystem', () => {
    const podSpecs = all.flatMap(({ obj }) => podSpecsOf(obj).map((spec) => ({ name: `${obj.kind}/${obj.metadata.name}`, spec: spec as unknown as V1PodSpec })));
    expect(podSpecs.length).toBe(5);
    for (const { name, spec } of podSpecs) {
      expect([name, spec.securityContext?.runAsNonRoot, spec.securityContext?.seccompProfile?.type]).toEqual([name, true, 'RuntimeDefault']);
      expect(spec.securityContext?.runAsUser).toBeGreaterThan(0);
      for (const c of containersOf(spec)) {
        const sc = c.securityContext;
        expect([name, c.name, sc?.readOnlyRootFilesystem, sc?.allowPrivilegeEscalation, sc?.runAsNonRoot, sc?.capabilities?.drop]).toEqual([name, c.name, true, false, true, ['ALL']]);
        expect([name, c.name, typeof c.resources?.requests?.memory, typeof c.resources?.limits?.memory]).toEqual([name, c.name, 'string', 'string']);
      }
    }
  });
});

describe('selectors', () => {
  it('of Deployments and StatefulSets match their own pod templates', () => {
    const controllers = workloads.filter(({ obj }) => obj.kind === 'Deployment' || obj.kind === 'StatefulSet');
    expect(controllers.length).toBe(3);
    for (const { obj } of controllers) {
      const selector = (obj.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels ?? {};
      expect(Object.keys(selector).length).toBeGreaterThan(0);
      expect([obj.metadata.name, matches(selector, podTemplateLabels(obj))]).toEqual([obj.metadata.name, true]);
    }
  });

  it('of Services, PDBs and anti-affinity terms select a pod template of their namespace', () => {
    // zkleader.io/role is set on the pod by the webhook (follower) and the sidecar (leader).
    const injectedLabels = (labels: Record<string, string> | undefined) => (labels?.['zkleader.io/inject'] === 'true' ? { ...labels, 'zkleader.io/role': 'leader' } : labels);
    const selectsSomePod = (selector: Record<string, string>, namespace: string | undefined) =>
      workloads.some(({ obj }) => obj.metadata.namespace === namespace && matches(selector, injectedLabels(podTemplateLabels(obj))));
    let checked = 0;
    for (const { obj } of all) {
      if (obj.kind === 'Service') {
        const selector = (obj as unknown as V1Service).spec?.selector ?? {};
        expect([obj.metadata.name, selectsSomePod(selector, obj.metadata.namespace)]).toEqual([obj.metadata.name, true]);
        checked++;
      }
      if (obj.kind === 'PodDisruptionBudget') {
        const selector = (obj.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
        expect([obj.metadata.name, selectsSomePod(selector, obj.metadata.namespace)]).toEqual([obj.metadata.name, true]);
        checked++;
      }
      for (const spec of podSpecsOf(obj) as unknown as V1PodSpec[]) {
        for (const term of spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
          expect(matches(term.podAffinityTerm.labelSelector?.matchLabels ?? {}, podTemplateLabels(obj))).toBe(true);
          checked++;
        }
      }
    }
    expect(checked).toBe(9);
  });

  it('of the leader Service include zkleader.io/role: leader, on a pod template that opts in by label', () => {
    const service = find<V1Service>(rendered.example, 'Service', 'orders-leader');
    expect(service.spec?.selector).toEqual({ 'app.kubernetes.io/name': 'orders', 'zkleader.io/role': 'leader' });
    const deployment = find<V1Deployment>(rendered.example, 'Deployment', 'orders');
    expect(deployment.spec?.replicas).toBe(3);
    expect(deployment.spec?.template.metadata?.labels?.['zkleader.io/inject']).toBe('true');
  });
});

describe('the ZooKeeper ensemble', () => {
  const sts = find<V1StatefulSet>(rendered.zookeeper, 'StatefulSet', 'zookeeper');
  const container = sts.spec?.template.spec?.containers.find((c) => c.name === 'zookeeper');
  const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? '']));

  it('lists one server per replica, by the stable names of its headless Service', () => {
    const headless = find<V1Service>(rendered.zookeeper, 'Service', sts.spec?.serviceName ?? '');
    expect(headless.spec?.clusterIP).toBe('None');
    expect(headless.spec?.publishNotReadyAddresses).toBe(true);
    const servers = (env.ZOO_SERVERS ?? '').split(/\s+/).filter(Boolean);
    expect(servers.length).toBe(sts.spec?.replicas);
    servers.forEach((server, ordinal) => {
      expect(server).toBe(`server.${ordinal + 1}=zookeeper-${ordinal}.${headless.metadata?.name}:2888:3888;2181`);
    });
    // myid is the ordinal + 1, as in the server list.
    expect(container?.command?.join(' ')).toContain('ZOO_MY_ID=$(( ${HOSTNAME##*-} + 1 ))');
  });

  it('runs the official 3.9 image with srvr and ruok allowed and probed, autopurge on, data and log on their own claims', () => {
    expect(container?.image).toBe('zookeeper:3.9');
    expect((env.ZOO_4LW_COMMANDS_WHITELIST ?? '').split(',')).toEqual(expect.arrayContaining(['ruok', 'srvr']));
    // Ready means serving in the quorum (srvr's Mode); alive means answering at all (ruok).
    expect(container?.readinessProbe?.exec?.command?.join(' ')).toContain('printf srvr');
    expect(container?.livenessProbe?.exec?.command?.join(' ')).toContain('printf ruok');
    expect(Number(env.ZOO_AUTOPURGE_PURGEINTERVAL)).toBeGreaterThan(0);
    expect(Number(env.ZOO_AUTOPURGE_SNAPRETAINCOUNT)).toBeGreaterThanOrEqual(3);
    expect(sts.spec?.volumeClaimTemplates?.map((c) => c.metadata?.name)).toEqual(['data', 'datalog']);
    const mounts = Object.fromEntries((container?.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));
    expect([mounts.data, mounts.datalog]).toEqual([env.ZOO_DATA_DIR, env.ZOO_DATA_LOG_DIR]);
    expect(sts.spec?.template.spec?.securityContext).toMatchObject({ runAsUser: 1000, fsGroup: 1000 });
    expect(find<{ spec: { maxUnavailable: number } }>(rendered.zookeeper, 'PodDisruptionBudget', 'zookeeper').spec.maxUnavailable).toBe(1);
  });

  it('meets the lease condition for every session timeout it grants, and keeps members of a cut-off server in their session at the default 10 s', () => {
    const timing = { tickTimeMs: Number(env.ZOO_TICK_TIME), syncLimit: Number(env.ZOO_SYNC_LIMIT) };
    const extra = Object.fromEntries((env.ZOO_CFG_EXTRA ?? '').split(/\s+/).map((entry) => entry.split('=') as [string, string]));
    // The server clamps every session timeout into this range: 4s–40s, as the annotation allows.
    expect([Number(extra.minSessionTimeout), Number(extra.maxSessionTimeout)]).toEqual([4000, 40_000]);
    expect(leaseConditionWarnings(timing, 10_000)).toEqual([]);
    for (const timeoutMs of [Number(extra.minSessionTimeout), Number(extra.maxSessionTimeout)]) {
      expect(leaseConditionWarnings(timing, timeoutMs).filter((w) => w.includes('below 3 × tickTime'))).toEqual([]);
    }
    // The sidecar checks the condition with conf.
    expect((env.ZOO_4LW_COMMANDS_WHITELIST ?? '').split(',')).toContain('conf');
  });

  it("admits on its client port the pods the webhook injects and the webhook's namespace; its peer ports only itself (NetworkPolicy)", () => {
    interface Peer {
      podSelector?: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string }[] };
      namespaceSelector?: { matchLabels?: Record<string, string> };
    }
    const policy = find<{ spec: { podSelector: { matchLabels: Record<string, string> }; ingress: { ports: { port: string }[]; from: Peer[] }[] } }>(rendered.zookeeper, 'NetworkPolicy', 'zookeeper');
    expect(matches(policy.spec.podSelector.matchLabels, sts.spec?.template.metadata?.labels)).toBe(true);
    const [clientRule, peerRule] = policy.spec.ingress;
    // The port the client Service sends to.
    const client = find<V1Service>(rendered.zookeeper, 'Service', 'zookeeper');
    expect(clientRule?.ports.map((p) => p.port)).toEqual([client.spec?.ports?.[0]?.targetPort]);
    const [elections, webhookNamespace, ensemble] = clientRule?.from ?? [];
    // Pods of elections in every namespace: the label the webhook sets on the example's pods.
    const deployment = find<V1Deployment>(rendered.example, 'Deployment', 'orders');
    const injected = inject({ metadata: { ...deployment.spec?.template.metadata, name: 'orders-1', namespace: 'zkleader-example' }, spec: deployment.spec?.template.spec as V1PodSpec }, deployedInjectorConfig());
    if (injected.kind !== 'injected') throw new Error(`the example was not injected: ${JSON.stringify(injected)}`);
    expect(elections?.namespaceSelector).toEqual({});
    expect(elections?.podSelector?.matchExpressions).toEqual([{ key: 'zkleader.io/election', operator: 'Exists' }]);
    expect(injected.pod.metadata?.labels?.['zkleader.io/election']).toBe('orders');
    // The webhook's namespace, by the name label every namespace carries.
    const webhookSet = new Set(rendered.webhook.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
    expect([...webhookSet]).toEqual([webhookNamespace?.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']]);
    expect(webhookNamespace?.podSelector).toBeUndefined();
    // Its own servers (a podSelector alone: the policy's namespace), and only they on the quorum and election ports.
    for (const peers of [ensemble, ...(peerRule?.from ?? [])]) {
      expect(peers?.namespaceSelector).toBeUndefined();
      expect(matches(peers?.podSelector?.matchLabels ?? { none: 'x' }, sts.spec?.template.metadata?.labels)).toBe(true);
    }
    expect(peerRule?.ports.map((p) => p.port)).toEqual(['quorum', 'election']);
  });

  it('takes its superuser digest from the Secret zookeeper-admin, which no set ships', () => {
    expect(container?.env?.find((e) => e.name === 'ZK_SUPER_DIGEST')?.valueFrom?.secretKeyRef).toEqual({ name: 'zookeeper-admin', key: 'superDigest' });
    expect(sts.metadata?.namespace).toBe('zookeeper');
    expect(all.filter(({ obj }) => obj.kind === 'Secret')).toEqual([]);
    expect(container?.command?.join(' ')).toContain('-Dzookeeper.DigestAuthenticationProvider.superDigest=${digest}');
  });

  it('is the one the webhook configuration points sidecars at', () => {
    const client = find<V1Service>(rendered.zookeeper, 'Service', 'zookeeper');
    // <service>.<namespace>.svc resolves through the pod's DNS search path under any cluster domain.
    expect(deployedInjectorConfig().zookeeper).toBe(`${client.metadata?.name}.${client.metadata?.namespace}.svc:${client.spec?.ports?.[0]?.port}`);
  });
});

describe('the webhook', () => {
  const mwc = find<V1MutatingWebhookConfiguration>(rendered.webhook, 'MutatingWebhookConfiguration', 'zkleader');
  const service = find<V1Service>(rendered.webhook, 'Service', 'zkleader-webhook');
  const deployment = find<V1Deployment>(rendered.webhook, 'Deployment', 'zkleader-webhook');
  const container = deployment.spec?.template.spec?.containers[0];

  it('has two entries, label opt-in failing closed and the rest open, both safe to reinvoke', () => {
    const entries = mwc.webhooks ?? [];
    expect(entries.map((w) => [w.failurePolicy, w.objectSelector])).toEqual([
      ['Fail', { matchLabels: { 'zkleader.io/inject': 'true' } }],
      ['Ignore', { matchExpressions: [{ key: 'zkleader.io/inject', operator: 'NotIn', values: ['true'] }] }],
    ]);
    for (const w of entries) {
      expect(w.sideEffects).toBe('None');
      expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
      expect(w.admissionReviewVersions).toEqual(['v1']);
      expect(w.reinvocationPolicy).toBe('IfNeeded');
      expect(w.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
      expect(w.namespaceSelector?.matchExpressions).toEqual([
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-node-lease', 'kube-public', 'zkleader-system'] },
      ]);
      expect(w.clientConfig.caBundle).toBeUndefined();
      expect(w.clientConfig.service).toEqual({ name: service.metadata?.name, namespace: service.metadata?.namespace, path: '/mutate', port: 443 });
    }
  });

  it('is reached on 443 → the container port the webhook listens on (8443)', () => {
    const port = service.spec?.ports?.[0];
    expect(port?.port).toBe(443);
    const target = container?.ports?.find((p) => p.name === port?.targetPort);
    expect(target?.containerPort).toBe(8443);
    expect(container?.args).toContain('--listen=[::]:8443');
    expect(deployment.spec?.replicas).toBe(2);
    expect(container?.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container?.livenessProbe?.httpGet?.path).toBe('/healthz');
  });

  it('runs flags that `zkleader webhook` has, and a config it accepts, with the image it injects', async () => {
    const out = new PassThrough();
    let help = '';
    out.on('data', (d: Buffer) => (help += d.toString()));
    const ctx = { env: {}, stdin: new PassThrough(), stdout: out, stderr: new PassThrough(), signal: new AbortController().signal };
    expect(await main(['webhook', '--help'], ctx)).toBe(0);
    expect(container?.args?.[0]).toBe('webhook');
    for (const arg of container?.args?.slice(1) ?? []) expect(help).toContain(` ${arg.split('=')[0]} `);
    expect(container?.env?.map((e) => e.name)).toEqual(['ZKLEADER_SIDECAR_IMAGE']);
    for (const e of container?.env ?? []) expect(help).toContain(`[env ${e.name}]`);
    expect(deployedInjectorConfig().image).toBe(image);
    expect(container?.image).toBe(image);
  });

  it('is reachable only on its two ports and opens no connection (NetworkPolicy)', () => {
    const policy = find<{ spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: { ports: { port: string }[]; from?: unknown[] }[]; egress: unknown[] } }>(
      rendered.webhook,
      'NetworkPolicy',
      'zkleader-webhook',
    );
    expect(matches(policy.spec.podSelector.matchLabels, deployment.spec?.template.metadata?.labels)).toBe(true);
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(policy.spec.egress).toEqual([]);
    // Named ports, so they follow the container: https (8443) and metrics (9090).
    expect(policy.spec.ingress.map((rule) => rule.ports.map((p) => p.port))).toEqual([['https'], ['metrics']]);
    for (const name of ['https', 'metrics']) expect(container?.ports?.some((p) => p.name === name)).toBe(true);
    expect(service.spec?.ports?.[0]?.targetPort).toBe('https');
  });

  it('has no API access: no token, no binding', () => {
    const sa = find<{ automountServiceAccountToken: boolean }>(rendered.webhook, 'ServiceAccount', 'zkleader-webhook');
    expect(sa.automountServiceAccountToken).toBe(false);
    expect(deployment.spec?.template.spec?.automountServiceAccountToken).toBe(false);
    const bindings = rendered.webhook.filter((o) => o.kind.endsWith('RoleBinding'));
    for (const b of bindings) expect((b as unknown as { subjects: { name: string }[] }).subjects.map((s) => s.name)).not.toContain('zkleader-webhook');
  });
});

describe('the certificates Job and CronJob', () => {
  const job = find<{ spec: { template: { spec: V1PodSpec } } }>(rendered.webhook, 'Job', 'zkleader-certs');
  const cron = find<{ spec: { concurrencyPolicy: string; jobTemplate: { spec: { template: { spec: V1PodSpec } } } } }>(rendered.webhook, 'CronJob', 'zkleader-certs');

  it.each([
    ['Job', job.spec.template.spec],
    ['CronJob', cron.spec.jobTemplate.spec.template.spec],
  ])('%s runs `zkleader certs` on the Secret the webhook mounts and the webhook configuration', (_kind, spec) => {
    const container = spec.containers[0];
    expect(container?.image).toBe(image);
    expect(container?.args?.[0]).toBe('certs');
    const { flags } = parseFlags(certsFlags, container?.args?.slice(1) ?? [], { POD_NAMESPACE: 'zkleader-system' });
    const webhookPod = find<V1Deployment>(rendered.webhook, 'Deployment', 'zkleader-webhook').spec?.template.spec;
    expect(flags.secret).toBe(webhookPod?.volumes?.find((v) => v.name === 'tls')?.secret?.secretName);
    expect(flags['webhook-config']).toBe('zkleader');
    expect(flags.service).toBe('zkleader-webhook');
    expect(container?.env?.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(spec.serviceAccountName).toBe('zkleader-certs');
  });

  it('are allowed only their Secret and the one webhook configuration', () => {
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const role = find<{ rules: unknown[] }>(rendered.webhook, 'Role', 'zkleader-certs');
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['zkleader-webhook-tls'], verbs: ['get', 'update'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    ]);
    const clusterRole = find<{ rules: unknown[] }>(rendered.webhook, 'ClusterRole', 'zkleader-certs');
    expect(clusterRole.rules).toEqual([
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: ['zkleader'], verbs: ['get', 'patch'] },
    ]);
    for (const kind of ['RoleBinding', 'ClusterRoleBinding']) {
      const binding = find<{ subjects: unknown[]; roleRef: { name: string } }>(rendered.webhook, kind, 'zkleader-certs');
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'zkleader-certs', namespace: 'zkleader-system' }]);
      expect(binding.roleRef.name).toBe('zkleader-certs');
    }
  });
});

describe('the example, injected as the webhook would', () => {
  const deployment = find<V1Deployment>(rendered.example, 'Deployment', 'orders');
  const config = deployedInjectorConfig();
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...deployment.spec?.template.metadata, name: 'orders-7c9f-abcde', namespace: 'zkleader-example' },
    spec: deployment.spec?.template.spec as V1PodSpec,
  };
  const result = inject(structuredClone(pod), config);
  if (result.kind !== 'injected') throw new Error(`the example was not injected: ${JSON.stringify(result)}`);
  const injected = result.pod;
  const sidecar = containersOf(injected.spec as V1PodSpec).find((c) => c.name === 'zkleader');

  it('gets a pod the API server accepts, still restricted in every container', () => {
    expect(result.warnings).toEqual([]);
    expect(validatePod(injected)).toEqual([]);
    for (const c of containersOf(injected.spec as V1PodSpec)) {
      expect([c.name, c.securityContext?.readOnlyRootFilesystem, c.securityContext?.allowPrivilegeEscalation]).toEqual([c.name, true, false]);
    }
  });

  it('runs the sidecar with the image, arguments and environment the sidecar CLI accepts', () => {
    expect(sidecar?.image).toBe(image);
    expect(sidecar?.command).toBeUndefined();
    expect(sidecar?.args?.[0]).toBe('sidecar');
    // The downward API resolves fieldRefs at run time; stand in for it.
    const downward: Record<string, string> = { 'metadata.name': 'orders-7c9f-abcde', 'metadata.namespace': 'zkleader-example', 'metadata.uid': 'uid-1', 'status.podIP': '10.0.1.7' };
    const env: NodeJS.ProcessEnv = {};
    for (const e of sidecar?.env ?? []) env[e.name] = e.value ?? downward[e.valueFrom?.fieldRef?.fieldPath ?? ''];
    // NODE_OPTIONS is read by node itself (checked below), every other variable by a flag.
    const knownVariables = new Set([
      'NODE_OPTIONS',
      ...Object.entries(sidecarFlags).flatMap(([flag, spec]) => [`ZKLEADER_${flag.replace(/-/g, '_').toUpperCase()}`, ...spec.env]),
    ]);
    for (const name of Object.keys(env)) expect([name, knownVariables.has(name)]).toEqual([name, true]);
    const { flags } = parseFlags(sidecarFlags, sidecar?.args?.slice(1) ?? [], env);
    expect(flags).toMatchObject({
      zookeeper: 'zookeeper.zookeeper.svc:2181',
      election: 'orders',
      namespace: 'zkleader-example',
      'pod-name': 'orders-7c9f-abcde',
      'pod-ip': '10.0.1.7',
      dir: '/var/run/zkleader',
      'session-timeout': 10_000,
      'no-label': false,
    });
  });

  it('sets NODE_OPTIONS that node accepts (it refuses to start on a flag not allowed there)', () => {
    const nodeOptions = sidecar?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value;
    expect(nodeOptions).toBeDefined();
    const run = spawnSync(process.execPath, ['-e', 'process.exit(0)'], { env: { NODE_OPTIONS: nodeOptions }, encoding: 'utf8' });
    expect([run.status, run.stderr]).toEqual([0, '']);
  });

  it('mounts the leader file read-only where the app reads it, and its account may label pods', () => {
    const app = injected.spec?.containers.find((c) => c.name === 'app');
    expect(app?.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/var/run/zkleader', readOnly: true }));
    expect(app?.command?.join('\n')).toContain('cat /var/run/zkleader/leader');
    const role = find<{ rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }>(rendered.example, 'Role', 'orders-zkleader');
    // delete: a cold standby's leader that lost leadership deletes its own pod (the policy allows only its own).
    expect(role.rules).toContainEqual({ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'patch', 'delete'] });
    expect(role.rules).toContainEqual({ apiGroups: [''], resources: ['events'], verbs: ['create'] });
    const binding = find<{ subjects: { name: string }[] }>(rendered.example, 'RoleBinding', 'orders-zkleader');
    expect(binding.subjects.map((s) => s.name)).toEqual([deployment.spec?.template.spec?.serviceAccountName]);
  });
});

/** deploy/ copied to a temporary directory with `edit` applied to its files, then rendered. */
function renderEditedCopy(edit: (dir: string) => void): KubernetesObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'zkleader-deploy-'));
  try {
    cpSync(join(root, 'deploy'), dir, { recursive: true });
    edit(dir);
    return renderKustomization(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('what a real cluster needs of the install', () => {
  it('names no cluster domain: every name resolves under any domain through the DNS search path', () => {
    for (const { set, obj } of all) expect([set, obj.kind, obj.metadata.name, JSON.stringify(obj).includes('cluster.local')]).toEqual([set, obj.kind, obj.metadata.name, false]);
  });

  it('ships no ValidatingAdmissionPolicy for a resource Kubernetes exempts from policies (it would never apply)', () => {
    // kube-apiserver applies no ValidatingAdmissionPolicy to writes of the admission policies
    // and their bindings (validating and mutating), nor of the non-persisted review
    // resources: k8s.io/apiserver/pkg/admission/plugin/policy/generic/plugin.go
    // (admissionResources), kubernetes#122205 and #123543, and "API kinds exempt from
    // admission validation" in the Kubernetes docs (kubernetes/website#49520). A policy
    // written for them would give false confidence. Webhook configurations are not among
    // them: they are exempt from admission webhooks only, so zkleader-certs-cabundle-only
    // (on mutatingwebhookconfigurations) does apply.
    const exempt = [
      ...policyExemptResources,
      ...['tokenreviews', 'selfsubjectreviews'].map((resource) => ({ group: 'authentication.k8s.io', resource })),
      ...['subjectaccessreviews', 'localsubjectaccessreviews', 'selfsubjectaccessreviews', 'selfsubjectrulesreviews'].map((resource) => ({ group: 'authorization.k8s.io', resource })),
    ];
    type Rule = { apiGroups?: string[]; resources?: string[] };
    // A wildcard counts too: a rule that names an exempt resource only through `*` should say what it means.
    const covers = (rule: Rule, { group, resource }: { group: string; resource: string }) =>
      (rule.apiGroups ?? []).some((g) => g === '*' || g === group) &&
      (rule.resources ?? []).some((r) => ['*', '*/*', resource].includes(r) || r.startsWith(`${resource}/`));
    const policies = all.filter(({ obj }) => obj.kind === 'ValidatingAdmissionPolicy');
    expect(policies.length).toBeGreaterThan(0);
    for (const { set, obj } of policies) {
      const rules = (obj.spec as { matchConstraints?: { resourceRules?: Rule[] } }).matchConstraints?.resourceRules ?? [];
      expect(rules.length).toBeGreaterThan(0);
      for (const rule of rules) {
        const hit = exempt.filter((target) => covers(rule, target)).map((t) => `${t.resource}.${t.group}`);
        expect([set, obj.metadata.name, hit]).toEqual([set, obj.metadata.name, []]);
      }
    }
  });

  it('starts the webhook pods before the certificates Secret exists (unready, not stuck in ContainerCreating)', () => {
    const spec = find<V1Deployment>(rendered.webhook, 'Deployment', 'zkleader-webhook').spec?.template.spec;
    expect(spec?.volumes?.find((v) => v.name === 'tls')?.secret).toMatchObject({ secretName: 'zkleader-webhook-tls', optional: true });
  });

  it('rolls the webhook out when its config changes: the ConfigMap is generated with a hash of its content in the name', () => {
    const name = webhookConfigMap().metadata.name;
    expect(name).toMatch(/^zkleader-webhook-config-[a-z0-9]{10}$/);
    expect(webhookConfigMap().data['config.yaml']).toBe(readFileSync(join(root, 'deploy', 'webhook-config.yaml'), 'utf8'));
    const edited = renderEditedCopy((dir) => appendFileSync(join(dir, 'webhook-config.yaml'), 'imagePullPolicy: Always\n'));
    const editedName = webhookConfigMap(edited).metadata.name;
    expect(editedName).toMatch(/^zkleader-webhook-config-[a-z0-9]{10}$/);
    expect(editedName).not.toBe(name);
  });

  it('injects the image the webhook runs, whatever the kustomization sets it to', () => {
    const edited = renderEditedCopy((dir) => {
      const path = join(dir, 'kustomization.yaml');
      writeFileSync(path, readFileSync(path, 'utf8').replace('newTag: v0.1.0', 'newName: registry.example/mirror/zkleader\n    newTag: v9.9.9'));
    });
    const webhookImage = find<V1Deployment>(edited, 'Deployment', 'zkleader-webhook').spec?.template.spec?.containers[0]?.image;
    expect(webhookImage).toBe('registry.example/mirror/zkleader:v9.9.9');
    expect(deployedInjectorConfig(edited).image).toBe(webhookImage);
    const job = find<{ spec: { template: { spec: V1PodSpec } } }>(edited, 'Job', 'zkleader-certs');
    expect(job.spec.template.spec.containers[0]?.image).toBe(webhookImage);
  });
});
