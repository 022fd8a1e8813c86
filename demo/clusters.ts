import type { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import type { LeaderDocument } from '../sidecar/leaderFile.js';
import { exampleWorkloadPod, epochAnnotation, LocalCluster, roleLabel } from '../test/support/localCluster.js';
import { findSidecar } from '../test/support/podRunner.js';
import { formatTable } from './table.js';

const sessionTimeout = '4s';
type ClusterName = 'east' | 'west';
const names: readonly ClusterName[] = ['east', 'west'];

/** Who leads across both clusters, once every running pod's leader.json agrees with the one leader label. */
async function waitForOneLeader(clusters: Record<ClusterName, LocalCluster>, namespace: string, notBefore?: string): Promise<{ leader: string; cluster: ClusterName; epoch: string }> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const labelled = (await Promise.all(names.map(async (c) => (await clusters[c].labelledLeaders(namespace)).map((pod) => ({ cluster: c, pod }))))).flat();
    const files = (await Promise.all(names.map(async (c) => [...(await clusters[c].leaderFiles()).values()]))).flat();
    const [one] = labelled;
    const leader = one?.pod.metadata?.name ?? '';
    const epoch = one?.pod.metadata?.annotations?.[epochAnnotation];
    const agree = files.every((f) => f?.leader?.pod === leader && f.leader.cluster === one?.cluster && f.epoch === epoch);
    if (labelled.length === 1 && one && epoch !== undefined && agree && (notBefore === undefined || BigInt(epoch) > BigInt(notBefore))) return { leader, cluster: one.cluster, epoch };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no agreed leader across both clusters within 30 s');
}

async function podTable(clusters: Record<ClusterName, LocalCluster>, namespace: string, selector?: string): Promise<string> {
  const rows: string[][] = [];
  for (const c of names) {
    const pods: V1Pod[] = (await clusters[c].core.listNamespacedPod({ namespace, ...(selector && { labelSelector: selector }) })).items;
    for (const p of pods) rows.push([c, p.metadata?.name ?? '', p.status?.phase ?? '', p.metadata?.labels?.[roleLabel] ?? '<none>', p.metadata?.annotations?.[epochAnnotation] ?? '']);
  }
  return formatTable(['CLUSTER', 'NAME', 'STATUS', 'ROLE', 'LEADER-EPOCH'], rows);
}

async function fileTable(clusters: Record<ClusterName, LocalCluster>): Promise<string> {
  const rows: string[][] = [];
  for (const c of names) {
    for (const [pod, f] of (await clusters[c].leaderFiles()) as Map<string, LeaderDocument | undefined>) {
      rows.push([c, pod, f?.state ?? '<no file>', f?.leader ? `${f.leader.pod}@${f.leader.cluster}` : '<unknown>', f?.epoch ?? '']);
    }
  }
  return formatTable(['CLUSTER', 'POD', 'STATE', 'LEADER', 'EPOCH'], rows);
}

/**
 * `make demo-clusters`: two clusters on this machine — two API emulators, each with its own
 * webhook (settings `cluster: east` and `cluster: west`) — sharing one ZooKeeper ensemble.
 * Pods of the example workload in both are one election: one leader across both, each
 * cluster's leader-only selector answering that pod or none; deleting the leader moves
 * leadership to the other cluster with a higher epoch. Returns the exit code.
 */
export async function runClustersDemo(out: Writable): Promise<number> {
  const started = Date.now();
  const say = (line: string): void => void out.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
  const show = (text: string): void => void out.write(`\n${text}\n`);
  out.write('zkleader demo: one election across two clusters that share a ZooKeeper ensemble, on one machine\n\n');
  const clusters: Partial<Record<ClusterName, LocalCluster>> = {};
  try {
    clusters.east = await LocalCluster.start({ webhookConfig: { cluster: 'east' }, progress: (l) => say(`east: ${l}`) });
    clusters.west = await LocalCluster.start({ webhookConfig: { cluster: 'west' }, sharedWith: clusters.east, progress: (l) => say(`west: ${l}`) });
    const both = clusters as Record<ClusterName, LocalCluster>;
    const { namespace, pod: template } = exampleWorkloadPod(sessionTimeout);
    for (const c of ['east', 'west', 'east', 'west'] as const) {
      const stored = await both[c].createPod(namespace, template);
      const env = findSidecar(stored)?.env?.find((e) => e.name === 'ZKLEADER_CLUSTER')?.value ?? '<none>';
      say(`${c}: pod ${stored.metadata?.name ?? ''} admitted, sidecar injected with ZKLEADER_CLUSTER=${env}`);
      const pod = await both[c].start(stored);
      while ((await pod.process.leaderJson()) === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    const first = await waitForOneLeader(both, namespace);
    say(`elected: ${first.leader} in cluster ${first.cluster} leads with epoch ${first.epoch}`);
    show(`$ kubectl --context east get pods -n ${namespace} -L ${roleLabel}; kubectl --context west get pods ...`);
    out.write(await podTable(both, namespace));
    show(`$ kubectl --context {east,west} get pods -n ${namespace} -l ${roleLabel}=leader   # each cluster's leader-only selector`);
    out.write(await podTable(both, namespace, `${roleLabel}=leader`));
    show('$ cat /var/run/zkleader/leader.json   # in each pod of both clusters');
    out.write(await fileTable(both));

    show(`$ kubectl --context ${first.cluster} delete pod -n ${namespace} ${first.leader}`);
    const deleteStarted = Date.now();
    await both[first.cluster].deletePod(namespace, first.leader);
    const next = await waitForOneLeader(both, namespace, first.epoch);
    say(`failover: ${next.leader} in cluster ${next.cluster} leads with epoch ${next.epoch} (was ${first.epoch} in ${first.cluster}), ${Date.now() - deleteStarted} ms after the delete began`);
    show(`$ kubectl --context {east,west} get pods -n ${namespace} -l ${roleLabel}=leader`);
    out.write(await podTable(both, namespace, `${roleLabel}=leader`));
    show('$ cat /var/run/zkleader/leader.json   # in each remaining pod');
    out.write(await fileTable(both));
    out.write('\n');
    say('shutting down: sidecars, webhooks, API emulators, ZooKeeper');
    await both.west.close();
    await both.east.close();
    say('done');
    return 0;
  } catch (err) {
    say(`FAILED: ${(err as Error).message}`);
    return 1;
  } finally {
    await clusters.west?.close();
    await clusters.east?.close();
  }
}
