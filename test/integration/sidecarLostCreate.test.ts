import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type ZooKeeper from 'zookeeper';
import { LeaderElection } from '../../zookeeper/election.js';
import type { ElectionSnapshot } from '../../zookeeper/electionSnapshot.js';
import { sessionIdToDecimal } from '../../zookeeper/session.js';
import { connectZooKeeper } from '../support/zookeeperClient.js';
import { ZooKeeperEnsemble } from '../support/zookeeperEnsemble.js';
import { ZooKeeperProxy } from '../support/zookeeperProxy.js';

// DESIGN.md: after a connection loss during create, find your node again by its uuid
// before creating another, and accept it only if its ephemeralOwner is your session.
// A proxy loses the answer of the candidate's create after the server applied it.

let ensemble: ZooKeeperEnsemble;
let proxy: ZooKeeperProxy;
let observer: ZooKeeper;
const elections: LeaderElection[] = [];

beforeAll(async () => {
  ensemble = await ZooKeeperEnsemble.start({ size: 1 });
  const server = ensemble.servers[0];
  if (!server) throw new Error('no server');
  proxy = await ZooKeeperProxy.start(server.clientPort);
  observer = await connectZooKeeper(ensemble.connectString);
}, 60_000);

afterAll(async () => {
  await Promise.all(elections.map((e) => e.close()));
  observer?.close();
  await proxy?.close();
  await ensemble?.close();
});

function startElection(pod: string, electionPath: string, connectString: string, latest: Map<string, ElectionSnapshot>): LeaderElection {
  const election = new LeaderElection({
    connectString,
    sessionTimeoutMs: 6000,
    electionPath,
    self: { pod, ip: null, uid: null, namespace: 'test', startedAt: new Date().toISOString() },
    logger: pino({ level: 'silent' }),
  });
  election.on('update', (snapshot) => latest.set(pod, snapshot));
  elections.push(election);
  election.start();
  return election;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a create whose answer is lost', () => {
  it('is found again by its uuid: one node per candidate, and the candidate leads with it', async () => {
    const path = '/zkleader/test/lost-create';
    const latest = new Map<string, ElectionSnapshot>();
    // The election node exists, so the candidate's create applies and only its answer is lost.
    await new Promise<void>((resolve, reject) => observer.mkdirp(path, (err: Error | null) => (err ? reject(err) : resolve())));
    proxy.cutNextCreate({ pathContains: `${path}/`, applyMs: 300 });
    const election = startElection('lost-0', path, proxy.connectString, latest);

    await until('the leader outcome after the lost answer', () => latest.get('lost-0')?.isLeader === true, 20_000);
    expect(proxy.cutCount).toBe(1);
    const children = await observer.get_children(path, false);
    expect(children).toHaveLength(1);
    const stat = (await observer.exists(`${path}/${children[0]}`, false)) as { ephemeralOwner: string };
    // Owned by the election's live session: the node it adopted is the one its lost create made.
    expect(election.sessionId).not.toBeNull();
    expect(sessionIdToDecimal(stat.ephemeralOwner)).toBe(election.sessionId);

    // A second candidate joining normally follows, and both name the same leader.
    startElection('lost-1', path, ensemble.connectString, latest);
    await until('the follower outcome', () => latest.get('lost-1')?.state === 'follower', 20_000);
    expect(latest.get('lost-1')?.leader?.pod).toBe('lost-0');
    expect(latest.get('lost-1')?.members.map((m) => m.pod)).toEqual(['lost-0', 'lost-1']);
    expect(await observer.get_children(path, false)).toHaveLength(2);
  }, 60_000);

  it('of the first member, before the election node exists (NONODE, nothing made): it makes the node, joins once and leads', async () => {
    const path = '/zkleader/test/lost-first-create';
    const latest = new Map<string, ElectionSnapshot>();
    const cutsBefore = proxy.cutCount;
    proxy.cutNextCreate({ pathContains: `${path}/`, applyMs: 300 });
    const election = startElection('first-0', path, proxy.connectString, latest);
    await until('the leader outcome after the lost answer', () => latest.get('first-0')?.isLeader === true, 20_000);
    expect(proxy.cutCount).toBe(cutsBefore + 1);
    const children = await observer.get_children(path, false);
    expect(children).toHaveLength(1);
    const stat = (await observer.exists(`${path}/${children[0]}`, false)) as { ephemeralOwner: string };
    expect(sessionIdToDecimal(stat.ephemeralOwner)).toBe(election.sessionId);
  }, 60_000);
});
