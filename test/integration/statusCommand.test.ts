import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ZooKeeperSession } from '../../zookeeper/session.js';
import { ConfigStore } from '../../zookeeper/configStore.js';
import { execFile } from 'node:child_process';
import { pino } from 'pino';
import { LeaderElection } from '../../zookeeper/election.js';
import type { ElectionSnapshot } from '../../zookeeper/electionSnapshot.js';
import type { ElectionStatus } from '../../zookeeper/electionStatus.js';
import { reserveLoopbackPorts, releaseLoopbackPorts } from '../support/loopbackPorts.js';
import { zkleaderBin } from '../support/repoRoot.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';

// `zkleader status` as an operator runs it (the built CLI), against a real ZooKeeper
// holding elections of live members.

let ensemble: ZooKeeperEnsemble;
const elections: LeaderElection[] = [];
const latest = new Map<string, ElectionSnapshot>();

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(zkleaderBin, args, { env: { PATH: process.env.PATH } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function join(namespace: string, election: string, pod: string): void {
  const e = new LeaderElection({
    connectString: ensemble.connectString,
    sessionTimeoutMs: 6000,
    electionPath: `/zkleader/${namespace}/${election}`,
    self: { pod, ip: '10.0.0.1', uid: `uid-${pod}`, namespace, startedAt: new Date().toISOString() },
    logger: pino({ level: 'silent' }),
  });
  e.on('update', (s) => latest.set(pod, s));
  elections.push(e);
  e.start();
}

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  for (const pod of ['orders-a', 'orders-b', 'orders-c']) join('shop', 'orders', pod);
  join('billing', 'invoices', 'invoices-a');
  const deadline = Date.now() + 20_000;
  // Members see a later join on their next heartbeat (they watch only their predecessor): wait for all views.
  const settled = () =>
    latest.size === 4 &&
    ['orders-a', 'orders-b', 'orders-c'].every((pod) => latest.get(pod)?.members.length === 3) &&
    [...latest.values()].every((s) => s.state !== 'unknown');
  while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (!settled()) throw new Error('elections did not settle');
}, 60_000);

afterAll(async () => {
  await Promise.all(elections.map((e) => e.close()));
  await ensemble?.close();
});

describe('zkleader status', () => {
  it('lists every election with its leader, epoch and candidates in election order (-o json)', async () => {
    const { code, stdout, stderr } = await run(['status', '--zookeeper', ensemble.connectString, '-o', 'json']);
    expect([code, stderr]).toEqual([0, '']);
    const { elections: listed } = JSON.parse(stdout) as { elections: ElectionStatus[] };
    expect(listed.map((e) => e.election)).toEqual(['billing/invoices', 'shop/orders']);
    const orders = listed[1] as ElectionStatus;
    const view = latest.get('orders-b') as ElectionSnapshot;
    expect(orders.leader?.pod).toBe(view.leader?.pod);
    expect(orders.epoch).toBe(view.epoch);
    expect(orders.candidates.map((c) => c.pod)).toEqual(view.members.map((m) => m.pod));
    expect(orders.candidates[0]).toMatchObject({ ip: '10.0.0.1', uid: `uid-${view.leader?.pod}` });
    expect(orders.candidates.every((c) => /^\d+$/.test(c.sessionId) && /-n_\d{10}$/.test(c.node))).toBe(true);
  });

  it('prints a table, and one election with --election', async () => {
    const { code, stdout } = await run(['status', '--zookeeper', ensemble.connectString, '--election', 'shop/orders']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ELECTION\s+LEADER\s+EPOCH\s+CANDIDATES\s+MEMBERS/);
    expect(lines).toHaveLength(2);
    const view = latest.get('orders-a') as ElectionSnapshot;
    expect(lines[1]?.split(/\s+/)).toEqual(['shop/orders', view.leader?.pod, view.epoch, '3', view.members.map((m) => m.pod).join(',')]);
  });

  it('lists the configs with their current versions, after the elections (json and table)', async () => {
    const session = new ZooKeeperSession({ connectString: ensemble.connectString, sessionTimeoutMs: 10_000 });
    await new Promise<void>((resolve) => session.once('connected', resolve));
    try {
      const store = new ConfigStore(session, { root: '/zkleader' });
      await store.set('shop', 'app', { mode: 'a' });
      await store.set('shop', 'app', { mode: 'b' });
      await store.rollback('shop', 'app', 1);
      const json = await run(['status', '--zookeeper', ensemble.connectString, '-o', 'json']);
      const parsed = JSON.parse(json.stdout) as { configs: { config: string; version: number; versions: number }[] };
      expect(parsed.configs).toEqual([expect.objectContaining({ config: 'shop/app', version: 3, versions: 3 })]);
      const table = await run(['status', '--zookeeper', ensemble.connectString]);
      const lines = table.stdout.trim().split('\n');
      const header = lines.findIndex((l) => /^CONFIG\s+VERSION\s+VERSIONS\s+UPDATED/.test(l));
      expect(header).toBeGreaterThan(0);
      expect(lines[header + 1]?.split(/\s+/).slice(0, 3)).toEqual(['shop/app', '3', '3']);
    } finally {
      await new ConfigStore(session, { root: '/zkleader' }).delete('shop', 'app');
      session.close();
    }
  });

  it('exits 1 naming an election that has no candidates', async () => {
    const { code, stderr } = await run(['status', '--zookeeper', ensemble.connectString, '--election', 'shop/nothing']);
    expect(code).toBe(1);
    expect(stderr).toBe('zkleader status: election shop/nothing has no candidates under /zkleader\n');
  });

  it('exits 1 naming the connect string when ZooKeeper cannot be reached', async () => {
    const [port] = await reserveLoopbackPorts(1);
    try {
      const { code, stderr } = await run(['status', '--zookeeper', `127.0.0.1:${port}`, '--timeout', '1s']);
      expect(code).toBe(1);
      expect(stderr).toBe(`zkleader status: no ZooKeeper session with 127.0.0.1:${port} within 1s\n`);
    } finally {
      releaseLoopbackPorts([port as number]);
    }
  });

  it.each([
    [['--election', 'shop'], '--election: expected NAMESPACE/NAME such as shop/orders, got "shop"'],
    [['--election', 'Shop/orders'], '--election: expected a DNS-1123 label'],
    [['-o', 'yaml'], '--output: expected table or json, got "yaml"'],
  ])('exits 2 for %j', async (extra, message) => {
    const { code, stderr } = await run(['status', '--zookeeper', ensemble.connectString, ...extra]);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('shows each member\'s cluster: a CLUSTER column and pod@cluster once a member has one, cluster in -o json', async () => {
    const views = new Map<string, ElectionSnapshot>();
    for (const [pod, cluster] of [['global-a', 'east'], ['global-b', 'west'], ['global-c', '']] as const) {
      const e = new LeaderElection({
        connectString: ensemble.connectString,
        sessionTimeoutMs: 6000,
        electionPath: '/zkleader/shop/global',
        // As the sidecar writes it: no `cluster` key for a member without one.
        self: { pod, ip: '10.0.0.2', uid: `uid-${pod}`, namespace: 'shop', startedAt: new Date().toISOString(), ...(cluster && { cluster }) },
        logger: pino({ level: 'silent' }),
      });
      e.on('update', (snapshot) => views.set(pod, snapshot));
      elections.push(e);
      e.start();
      // Joined before the next: the election order is a, b, c.
      while (!views.get(pod) || views.get(pod)?.state === 'unknown') await new Promise((r) => setTimeout(r, 20));
    }
    const table = await run(['status', '--zookeeper', ensemble.connectString, '--election', 'shop/global']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ELECTION\s+LEADER\s+CLUSTER\s+EPOCH\s+CANDIDATES\s+MEMBERS/);
    const epoch = views.get('global-a')?.epoch;
    expect(lines[1]?.split(/\s+/)).toEqual(['shop/global', 'global-a', 'east', epoch, '3', 'global-a@east,global-b@west,global-c']);
    const json = await run(['status', '--zookeeper', ensemble.connectString, '--election', 'shop/global', '-o', 'json']);
    const [global] = (JSON.parse(json.stdout) as { elections: ElectionStatus[] }).elections;
    expect(global?.candidates.map((c) => c.cluster)).toEqual(['east', 'west', '']);
    expect(global?.leader).toMatchObject({ pod: 'global-a', cluster: 'east' });
    // The followers know the leader's cluster (leader.json's leader.cluster).
    expect(views.get('global-b')?.leader).toMatchObject({ pod: 'global-a', cluster: 'east' });
    // Elections of members without a cluster keep the table they had.
    const plain = await run(['status', '--zookeeper', ensemble.connectString, '--election', 'shop/orders']);
    expect(plain.stdout.split('\n')[0]).toMatch(/^ELECTION\s+LEADER\s+EPOCH\s+CANDIDATES/);
  }, 30_000);
});
