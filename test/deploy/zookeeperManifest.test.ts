import { afterEach, describe, expect, it } from '@jest/globals';
import type { V1LabelSelector, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderKustomization } from '../support/kustomize.js';

// deploy/zookeeper must work in any namespace and with any cluster domain: the servers
// name each other relative to the pod's DNS search path (<namespace>.svc.<domain>).

const root = join(import.meta.dirname, '..', '..');
const objects = renderKustomization(join(root, 'deploy', 'zookeeper'));
const sts = objects.find((o) => o.kind === 'StatefulSet') as unknown as V1StatefulSet;
const container = sts.spec?.template.spec?.containers.find((c) => c.name === 'zookeeper');
const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? '']));

describe('the ZooKeeper manifests of deploy/zookeeper', () => {
  it.each(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o] as const))('%s does not name the cluster domain', (_name, obj) => {
    expect(JSON.stringify(obj)).not.toContain('cluster.local');
  });

  it('ZOO_SERVERS lists one server per replica as <statefulset>-<ordinal>.<serviceName>, relative to the namespace', () => {
    const name = sts.metadata?.name ?? '';
    const serviceName = sts.spec?.serviceName ?? '';
    const headless = objects.find((o) => o.kind === 'Service' && o.metadata.name === serviceName) as unknown as V1Service | undefined;
    expect(headless?.spec?.clusterIP).toBe('None');
    const replicas = sts.spec?.replicas ?? 0;
    expect(replicas).toBeGreaterThanOrEqual(3);
    const servers = (env.ZOO_SERVERS ?? '').split(/\s+/).filter(Boolean);
    expect(servers).toEqual(Array.from({ length: replicas }, (_, ordinal) => `server.${ordinal + 1}=${name}-${ordinal}.${serviceName}:2888:3888;2181`));
  });

  it('a rolling update waits for a restarted server to be ready for a while before the next', () => {
    expect(sts.spec?.updateStrategy?.type).toBe('RollingUpdate');
    expect(sts.spec?.minReadySeconds).toBeGreaterThanOrEqual(10);
  });
});

// The superuser of `zkleader tenant` (DESIGN.md "Tenancy"): ZooKeeper accepts a digest
// credential as superuser when the JVM has zookeeper.DigestAuthenticationProvider.superDigest
// set to `user:base64(sha1("user:password"))`. The manifests take it from a Secret they do not ship.
describe('the superuser digest of deploy/zookeeper', () => {
  const secretRef = container?.env?.find((e) => e.name === 'ZK_SUPER_DIGEST')?.valueFrom?.secretKeyRef;
  const script = container?.command?.[2] ?? '';
  const digestOf = (user: string, password: string) => `${user}:${createHash('sha1').update(`${user}:${password}`).digest('base64')}`;
  const digest = digestOf('admin', 'correct horse battery staple');
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /**
   * The server container's command as the container runtime runs it, with the environment its
   * spec resolves to (the Secret's value as given) and a stub in place of the image's
   * /docker-entrypoint.sh that records what it was started with.
   */
  function startServer(secretValue: string | undefined): { code: number | null; output: string; started: { args: string[]; env: Record<string, string> } | undefined } {
    dir = mkdtempSync(join(tmpdir(), 'zkleader-zk-command-'));
    const record = join(dir, 'started.json');
    const stub = join(dir, 'docker-entrypoint.sh');
    writeFileSync(stub, `#!/usr/bin/env node\nrequire('fs').writeFileSync(${JSON.stringify(record)}, JSON.stringify({ args: process.argv.slice(2), env: process.env }));\n`, { mode: 0o755 });
    expect(script.split('exec /docker-entrypoint.sh zkServer.sh start-foreground').length).toBe(2);
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOSTNAME: `${sts.metadata?.name ?? ''}-2` };
    for (const e of container?.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.secretKeyRef && secretValue !== undefined) env[e.name] = secretValue;
    }
    const run = spawnSync(container?.command?.[0] ?? 'bash', [container?.command?.[1] ?? '-c', script.replace('/docker-entrypoint.sh', stub)], { env, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = existsSync(record) ? (JSON.parse(readFileSync(record, 'utf8')) as { args: string[]; env: Record<string, string> }) : undefined;
    return { code: run.status, output: `${run.stdout}${run.stderr}`, started };
  }

  it('comes from the key superDigest of the Secret zookeeper-admin, which the manifests do not ship', () => {
    expect(secretRef).toEqual({ name: 'zookeeper-admin', key: 'superDigest' });
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(JSON.stringify(objects)).not.toMatch(/superDigest=[A-Za-z0-9]/);
  });

  it('reaches the JVM as zookeeper.DigestAuthenticationProvider.superDigest, beside the other flags, and is printed nowhere', () => {
    const run = startServer(digest);
    expect(run.code).toBe(0);
    expect(run.started?.args).toEqual(['zkServer.sh', 'start-foreground']);
    const flags = (run.started?.env.JVMFLAGS ?? '').split(/\s+/).filter(Boolean);
    expect(flags).toContain(`-Dzookeeper.DigestAuthenticationProvider.superDigest=${digest}`);
    expect(flags).toEqual(expect.arrayContaining((env.JVMFLAGS ?? '').split(/\s+/).filter(Boolean)));
    // myid from the ordinal, as before.
    expect(run.started?.env.ZOO_MY_ID).toBe('3');
    // Only the JVM's flags hold it: the variable that carried it is gone, and nothing was printed.
    expect(run.started?.env.ZK_SUPER_DIGEST).toBeUndefined();
    expect(run.output).toBe('');
  });

  it('accepts the value of `kubectl create secret --from-file` (a final newline)', () => {
    const run = startServer(`${digest}\n`);
    expect((run.started?.env.JVMFLAGS ?? '').split(/\s+/)).toContain(`-Dzookeeper.DigestAuthenticationProvider.superDigest=${digest}`);
  });

  it.each([
    ['the password itself instead of its digest', 'admin:correct horse battery staple'],
    ['a digest without its user', digest.split(':')[1] ?? ''],
    ['a hex digest', `admin:${createHash('sha1').update('admin:x').digest('hex')}`],
    ['an empty value', ''],
  ])('refuses to start the server on %s, naming the Secret and key and not the value', (_what, value) => {
    const run = startServer(value);
    expect(run.code).toBe(1);
    expect(run.started).toBeUndefined();
    expect(run.output).toContain('the Secret zookeeper-admin, key superDigest, must be user:base64(sha1(user:password))');
    if (value !== '') expect(run.output).not.toContain(value);
  });
});

/** Who may open a connection to a port of the ensemble's pods, under the NetworkPolicies of deploy/zookeeper. */
describe('the NetworkPolicy of deploy/zookeeper', () => {
  interface Peer {
    podSelector?: V1LabelSelector;
    namespaceSelector?: V1LabelSelector;
    ipBlock?: unknown;
  }
  interface Rule {
    ports?: { protocol?: string; port?: string | number }[];
    from?: Peer[];
  }
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as { metadata: { namespace: string }; spec: { podSelector: V1LabelSelector; policyTypes: string[]; ingress: Rule[] } }[];
  const serverLabels = sts.spec?.template.metadata?.labels ?? {};
  const namespace = sts.metadata?.namespace ?? '';
  const containerPorts = container?.ports ?? [];

  function selects(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
    if (!selector) return true;
    const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
    return (
      byLabels &&
      (selector.matchExpressions ?? []).every((e) => {
        switch (e.operator) {
          case 'Exists':
            return e.key in labels;
          case 'DoesNotExist':
            return !(e.key in labels);
          case 'In':
            return e.key in labels && (e.values ?? []).includes(labels[e.key] ?? '');
          case 'NotIn':
            return !(e.key in labels) || !(e.values ?? []).includes(labels[e.key] ?? '');
          default:
            throw new Error(`operator ${e.operator}`);
        }
      })
    );
  }

  /** NetworkPolicy semantics: a podSelector alone selects pods of the policy's namespace; with a namespaceSelector, pods of the selected namespaces. */
  function peerAdmits(peer: Peer, policyNamespace: string, source: { namespace: string; labels: Record<string, string> }): boolean {
    if (peer.ipBlock) return false;
    const namespaceLabels = { 'kubernetes.io/metadata.name': source.namespace };
    if (peer.namespaceSelector === undefined) return source.namespace === policyNamespace && selects(peer.podSelector, source.labels);
    return selects(peer.namespaceSelector, namespaceLabels) && selects(peer.podSelector, source.labels);
  }

  function admits(source: { namespace: string; labels: Record<string, string> }, port: number): boolean {
    const applying = policies.filter((p) => p.metadata.namespace === namespace && selects(p.spec.podSelector, serverLabels) && p.spec.policyTypes.includes('Ingress'));
    if (applying.length === 0) return true;
    return applying.some((p) =>
      p.spec.ingress.some((rule) => {
        const portMatches = !rule.ports || rule.ports.some((rp) => rp.port === port || containerPorts.some((cp) => cp.name === rp.port && cp.containerPort === port));
        return portMatches && (!rule.from || rule.from.some((peer) => peerAdmits(peer, p.metadata.namespace, source)));
      }),
    );
  }

  const electionPod = { namespace: 'shop', labels: { app: 'orders', 'zkleader.io/election': 'orders', 'zkleader.io/role': 'follower' } };

  it('applies to the servers, on ingress, naming ports the container declares', () => {
    expect(policies.length).toBe(1);
    expect(selects(policies[0]?.spec.podSelector, serverLabels)).toBe(true);
    expect(policies[0]?.spec.policyTypes).toEqual(['Ingress']);
    for (const rule of policies[0]?.spec.ingress ?? []) for (const p of rule.ports ?? []) expect(containerPorts.map((c) => c.name)).toContain(p.port);
    expect(containerPorts.map((c) => [c.name, c.containerPort])).toEqual([['client', 2181], ['quorum', 2888], ['election', 3888]]);
  });

  it.each<[string, boolean, boolean, { namespace: string; labels: Record<string, string> }]>([
    ['a pod of an election, in any namespace', true, false, electionPod],
    ['a pod of an election in the ensemble namespace', true, false, { ...electionPod, namespace: 'zookeeper' }],
    ['any pod of the webhook namespace zkleader-system', true, false, { namespace: 'zkleader-system', labels: { 'app.kubernetes.io/name': 'zkleader-certs' } }],
    ['a server of the ensemble', true, true, { namespace: 'zookeeper', labels: serverLabels }],
    ['a pod without an election', false, false, { namespace: 'shop', labels: { app: 'orders' } }],
    ['another pod in the ensemble namespace', false, false, { namespace: 'zookeeper', labels: { app: 'debug' } }],
    ['a pod labelled like a server, in another namespace', false, false, { namespace: 'shop', labels: serverLabels }],
  ])('%s: client port %s, quorum and election ports %s', (_who, client, peers, source) => {
    expect(admits(source, 2181)).toBe(client);
    expect([admits(source, 2888), admits(source, 3888)]).toEqual([peers, peers]);
  });
});
