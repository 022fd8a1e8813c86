import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import type { LeaderDocument } from '../sidecar/leaderFile.js';
import { exampleWorkloadPod, epochAnnotation, LocalCluster, roleLabel } from '../test/support/localCluster.js';
import { findSidecar, zkleaderBin } from '../test/support/podRunner.js';
import { isAlive } from '../test/support/processRegistry.js';
import { formatTable } from './table.js';

const replicas = 3;
const sessionTimeout = '4s';
const configName = 'orders-settings';

/** Runs bin/zkleader (as an operator would run the CLI) and returns its stdout. */
async function zkleader(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(zkleaderBin, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  return stdout.trim();
}

/** Until every running pod's config.json has `version` of the demo's config; the milliseconds it took. */
async function untilConfigEverywhere(cluster: LocalCluster, version: number, since: number, timeoutMs = 15_000): Promise<number> {
  for (;;) {
    const versions = await Promise.all(
      cluster.pods().map(async (p) => {
        try {
          return (JSON.parse(await readFile(join(p.process.volumeDir, 'config.json'), 'utf8')) as Record<string, { version: number }>)[configName]?.version;
        } catch {
          return undefined;
        }
      }),
    );
    if (versions.every((v) => v === version)) return Date.now() - since;
    if (Date.now() - since > timeoutMs) throw new Error(`config ${configName} version ${version} did not reach every pod within ${timeoutMs} ms: ${JSON.stringify(versions)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * `make demo`: stands up ZooKeeper, the API emulator and the webhook on this machine,
 * creates the example workload's pods through admission, runs them, shows who leads
 * (labels, leader files, a leader-only selector), deletes the leader and times the
 * failover, then shuts everything down. Returns the exit code.
 */
export async function runDemo(out: Writable): Promise<number> {
  const started = Date.now();
  const say = (line: string): void => void out.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
  const show = (text: string): void => void out.write(`\n${text}\n`);
  out.write('zkleader demo: ZooKeeper leader election for the pods of a Deployment, on one machine\n\n');

  let cluster: LocalCluster | undefined;
  let credentialDir: string | undefined;
  try {
    cluster = await LocalCluster.start({ progress: say });
    const { namespace, pod: template } = exampleWorkloadPod(sessionTimeout);
    // Configuration in ZooKeeper: the pods also follow a config (as with the annotation
    // zkleader.io/config on the pod template), set first with the real CLI and the tenant's
    // credential from its Secret.
    template.metadata = { ...template.metadata, annotations: { ...template.metadata?.annotations, 'zkleader.io/config': configName } };
    const secret = await cluster.core.readNamespacedSecret({ namespace, name: 'zkleader-zookeeper' });
    credentialDir = await mkdtemp(join(tmpdir(), 'zkleader-demo-'));
    const credentialFile = join(credentialDir, 'credential');
    await writeFile(credentialFile, Buffer.from(secret.data?.credential ?? '', 'base64'), { mode: 0o600 });
    const config = ['config', '--zookeeper', cluster.zookeeper.connectString, '--credential-file', credentialFile];
    const configCli = (sub: string, ...args: string[]) => zkleader([config[0] as string, sub, ...config.slice(1), ...args]);
    show(`$ zkleader config set ${namespace}/${configName} --from-literal color=blue --from-literal max-orders=100`);
    out.write(`${await configCli('set', `${namespace}/${configName}`, '--from-literal', 'color=blue', '--from-literal', 'max-orders=100')}\n\n`);
    say(`creating ${replicas} pods of Deployment ${namespace}/orders (deploy/example, session timeout ${sessionTimeout}) through admission`);
    for (let i = 0; i < replicas; i++) {
      const stored = await cluster.createPod(namespace, template);
      const sidecar = findSidecar(stored);
      say(`  pod ${stored.metadata?.name ?? ''}: sidecar ${sidecar ? `"${sidecar.name}" injected (${sidecar.restartPolicy === 'Always' ? 'native' : 'classic'})` : 'NOT injected'}, label ${roleLabel}=${stored.metadata?.labels?.[roleLabel] ?? '<none>'}`);
      if (!sidecar) throw new Error(`pod ${stored.metadata?.name ?? ''} was created without the sidecar`);
    }
    say('running each pod\'s injected zkleader container (bin/zkleader sidecar, its spec\'s args and env)');
    for (const pod of (await cluster.core.listNamespacedPod({ namespace })).items) await cluster.start(pod);
    const first = await cluster.waitForLeadership(namespace);
    say(`elected: ${first.leader} leads with epoch ${first.epoch}`);

    show(`$ kubectl get pods -n ${namespace} -L ${roleLabel}`);
    out.write(podTable((await cluster.core.listNamespacedPod({ namespace })).items));
    show('$ cat /var/run/zkleader/leader.json   # in each pod, through its pod runner volume');
    out.write(leaderFileTable(await cluster.leaderFiles()));
    show(`$ cat /var/run/zkleader/config/${configName}/color   # in each pod`);
    out.write(await configTable(cluster));

    show(`$ zkleader config set ${namespace}/${configName} --from-literal color=green --from-literal max-orders=100`);
    const setAt = Date.now();
    out.write(`${await configCli('set', `${namespace}/${configName}`, '--from-literal', 'color=green', '--from-literal', 'max-orders=100')}\n`);
    const updateMs = await untilConfigEverywhere(cluster, 2, setAt);
    say(`config version 2 on all ${replicas} pods ${updateMs} ms after \`config set\` began`);
    show(`$ zkleader config rollback ${namespace}/${configName} --previous`);
    const rollbackAt = Date.now();
    out.write(`${await configCli('rollback', `${namespace}/${configName}`, '--previous')}\n`);
    // A rollback stores the keys of version 1 as version 3 (as Helm makes a new revision).
    const rollbackMs = await untilConfigEverywhere(cluster, 3, rollbackAt);
    say(`config version 3 (the keys of version 1) on all ${replicas} pods ${rollbackMs} ms after \`config rollback\` began`);
    out.write(await configTable(cluster));
    show(`$ kubectl get pods -n ${namespace} -l ${roleLabel}=leader   # GET /api/v1/namespaces/${namespace}/pods?labelSelector=${roleLabel}%3Dleader, via @kubernetes/client-node`);
    out.write(podTable(await cluster.labelledLeaders(namespace)));

    show(`$ kubectl delete pod -n ${namespace} ${first.leader}`);
    const deleteStarted = Date.now();
    await cluster.deletePod(namespace, first.leader);
    say(`pod ${first.leader} deleted (its sidecar stepped down on SIGTERM)`);
    const next = await cluster.waitForLeadership(namespace, { notBefore: first.epoch });
    const failoverMs = Date.now() - deleteStarted;
    say(`failover: ${next.leader} leads with epoch ${next.epoch} (was ${first.epoch}), ${failoverMs} ms after the delete began`);
    show(`$ kubectl get pods -n ${namespace} -L ${roleLabel}`);
    out.write(podTable((await cluster.core.listNamespacedPod({ namespace })).items));
    show('$ cat /var/run/zkleader/leader.json   # in each remaining pod');
    out.write(leaderFileTable(await cluster.leaderFiles()));
    out.write('\n');

    say('shutting down: sidecars, webhook, API emulator, ZooKeeper');
    const pids = [...cluster.pods().map((p) => p.process.process.pid), ...cluster.zookeeper.servers.map((s) => s.pid)];
    await cluster.close();
    const left = leftRunning(pids);
    if (left.length > 0) throw new Error(`still running after shutdown: ${left.join(', ')}`);
    if (cluster.webhook.running || cluster.zookeeper.servers.some((s) => s.running)) throw new Error('the webhook or a ZooKeeper server still runs after shutdown');
    cluster = undefined;
    say(`done: no ZooKeeper JVM, webhook or sidecar left running; failover took ${failoverMs} ms`);
    return 0;
  } catch (err) {
    say(`FAILED: ${(err as Error).message}`);
    return 1;
  } finally {
    await cluster?.close();
    if (credentialDir) await rm(credentialDir, { recursive: true, force: true });
  }
}

async function configTable(cluster: LocalCluster): Promise<string> {
  const rows = await Promise.all(
    cluster.pods().map(async (p) => {
      const color = await readFile(join(p.process.volumeDir, 'config', configName, 'color'), 'utf8').catch(() => '<none>');
      const doc = await readFile(join(p.process.volumeDir, 'config.json'), 'utf8').catch(() => '{}');
      const version = (JSON.parse(doc) as Record<string, { version?: number }>)[configName]?.version;
      return [p.name, String(version ?? '<none>'), color];
    }),
  );
  return formatTable(['POD', 'VERSION', 'COLOR'], rows);
}

function podTable(pods: readonly V1Pod[]): string {
  const rows = pods.map((p) => {
    const sidecar = findSidecar(p);
    const containers = (p.spec?.containers ?? []).length + (sidecar?.restartPolicy === 'Always' ? 1 : 0);
    return [p.metadata?.name ?? '', `${containers}`, p.status?.phase ?? '', p.status?.podIP ?? '<none>', p.metadata?.labels?.[roleLabel] ?? '<none>', p.metadata?.annotations?.[epochAnnotation] ?? ''];
  });
  return formatTable(['NAME', 'CONTAINERS', 'STATUS', 'IP', 'ROLE', 'LEADER-EPOCH'], rows);
}

function leaderFileTable(files: ReadonlyMap<string, LeaderDocument | undefined>): string {
  const rows = [...files].map(([pod, f]) => [pod, f?.state ?? '<no file>', f?.leader?.pod ?? '<unknown>', f?.epoch ?? '', f?.validUntil ?? '']);
  return formatTable(['POD', 'STATE', 'LEADER', 'EPOCH', 'VALID-UNTIL'], rows);
}

/** The pids of the demo's processes that are still alive. */
function leftRunning(pids: ReadonlyArray<number | undefined>): string[] {
  return pids.filter((pid): pid is number => pid !== undefined && isAlive(pid)).map((pid) => `pid ${pid}`);
}
