import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { ZooKeeperCode, ZooKeeperError, ZooKeeperSession } from '../../zookeeper/session.js';
import { serverMode } from '../support/fourLetterWord.js';
import { connectZooKeeper, withinMs } from '../support/zookeeperClient.js';
import { ZooKeeperEnsemble, type ZooKeeperServer } from '../support/zookeeperEnsemble.js';

// A partitionable ensemble against the real ZooKeeper servers: what each cut does, as
// the servers and their clients see it. syncLimit is raised so that the time a cut-off
// server keeps serving (syncLimit ticks) is long enough to observe on a loaded machine.
const tickTimeMs = 200;
const syncLimit = 10;
const syncWindowMs = tickTimeMs * syncLimit;

/**
 * Every result of the zookeeper binding that a connection loss can produce (a session
 * event, a failed call) is handed on only after this: the binding runs those callbacks
 * inside the C client's zookeeper_process(), which closes the lost socket first and lets
 * libuv forget its fd only afterwards (EPOLL_CTL_DEL on the fd number). A socket opened
 * in between — by a handler or its promise continuations — gets that fd number, loses its
 * registration and never connects. Seen here as the first `srvr` after a client timed
 * out hanging until its own timeout, whatever server it went to.
 */
function afterZooKeeperCallback(): Promise<void> {
  return setImmediate();
}

async function modeOf(server: ZooKeeperServer): Promise<string | undefined> {
  return server.fourLetterWord('srvr', 1000).then(serverMode, () => undefined);
}

/** When `session` next emits one of `events` (performance.now()), handed on after the binding's callback. */
function nextEvent(session: ZooKeeperSession, events: readonly ('connected' | 'disconnected' | 'closed')[]): Promise<number> {
  return new Promise((resolve) => {
    const seen = (): void => {
      const at = performance.now();
      void afterZooKeeperCallback().then(() => resolve(at));
    };
    if (events.includes('connected')) session.once('connected', seen);
    if (events.includes('disconnected')) session.once('disconnected', seen);
    if (events.includes('closed')) session.once('closed', seen);
  });
}

/**
 * When `session` lost its server: the `disconnected` event, or — on a loaded machine the
 * event can come late — the session first seen not connected (performance.now()).
 */
async function droppedWithin(session: ZooKeeperSession, dropped: Promise<number>, timeoutMs: number, what: string, reads?: { lostConnectionAt(): number | undefined }): Promise<number> {
  let seen: number | undefined;
  void dropped.then((at) => (seen ??= at));
  const deadline = performance.now() + timeoutMs;
  while (seen === undefined) {
    // A read that failed with CONNECTIONLOSS is the client seeing the drop too.
    const lost = reads?.lostConnectionAt();
    if (lost !== undefined) seen = lost;
    else if (!session.connected) seen = performance.now();
    else if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    else await sleep(20);
  }
  return seen;
}

/** Polls `probe` until it returns a value that is not undefined. */
async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** How a ZooKeeper call ended, and when (performance.now()). */
async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T; at: number } | { ok: false; error: string; at: number }> {
  const outcome = await promise.then(
    (value) => ({ ok: true as const, value, at: performance.now() }),
    (err: unknown) => ({ ok: false as const, error: (err as Error).message, at: performance.now() }),
  );
  await afterZooKeeperCallback();
  return outcome;
}

interface TimedRead {
  readonly at: number;
  readonly children: string[];
}

/**
 * Reads `path`'s children through one session until a read fails or stop() is called;
 * stop() returns the reads so far at once: a read sent while the session is disconnected
 * waits for a reconnection, however long.
 */
function pollReads(session: ZooKeeperSession, path: string): { stop(): TimedRead[]; lostConnectionAt(): number | undefined } {
  const reads: TimedRead[] = [];
  let stopped = false;
  let lostAt: number | undefined;
  void (async () => {
    while (!stopped) {
      try {
        const children = await withinMs(session.getChildren(path), 5000, `getChildren ${path}`);
        reads.push({ at: performance.now(), children: [...children].sort() });
      } catch (err) {
        // The server dropped the session's connection (or stopped answering).
        if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.CONNECTIONLOSS) lostAt = performance.now();
        await afterZooKeeperCallback();
        return;
      }
      await sleep(20);
    }
  })();
  return {
    stop() {
      stopped = true;
      return [...reads];
    },
    lostConnectionAt: () => lostAt,
  };
}

/** Established TCP connections of a process, by socket inode, from /proc (Linux). */
function establishedConnections(pid: number): { localPort: number; remotePort: number }[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined) inodes.add(inode);
    } catch {
      // Closed between readdir and readlink.
    }
  }
  const connections: { localPort: number; remotePort: number }[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[];
    try {
      lines = readFileSync(table, 'utf8').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const [, local, remote, state, , , , , , inode] = line.trim().split(/\s+/);
      // State 01 is ESTABLISHED.
      if (state !== '01' || inode === undefined || !inodes.has(inode) || local === undefined || remote === undefined) continue;
      const port = (address: string) => Number.parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
      connections.push({ localPort: port(local), remotePort: port(remote) });
    }
  }
  return connections;
}

describe('a partitionable 3-node ensemble', () => {
  let ensemble: ZooKeeperEnsemble;
  const cleanups: (() => void)[] = [];

  async function session(connectString: string, sessionTimeoutMs = 20_000): Promise<ZooKeeperSession> {
    const zk = new ZooKeeperSession({ connectString, sessionTimeoutMs });
    cleanups.push(() => zk.close());
    await withinMs(nextEvent(zk, ['connected']), 15_000, `ZooKeeper session with ${connectString}`);
    return zk;
  }

  /** The leader, once both followers are in sync with it (a test that cuts one off still has a quorum). */
  async function currentLeader(): Promise<ZooKeeperServer> {
    return eventually(
      async () => {
        const leader = await ensemble.leader();
        const mntr = await leader?.fourLetterWord('mntr').catch(() => '');
        return mntr !== undefined && /^zk_synced_followers\s+2$/m.test(mntr) ? leader : undefined;
      },
      30_000,
      'a leader with both followers in sync',
    );
  }

  beforeAll(async () => {
    ensemble = await ZooKeeperEnsemble.start({ partitionable: true, tickTimeMs, syncLimit });
  });
  afterAll(() => ensemble?.close());
  afterEach(async () => {
    // Each test starts from every link passing and every server serving. Heal first:
    // closing a session blocks this process for up to 1.5 s while its server is silent.
    ensemble.heal();
    for (const cleanup of cleanups.splice(0)) cleanup();
    await Promise.all(ensemble.servers.map((s) => s.waitServing(30_000)));
  });

  test('every server-to-server connection runs through a proxy', async () => {
    const leader = await currentLeader();
    const realPorts = new Set<number>();
    for (const from of ensemble.servers) {
      const config = readFileSync(join(ensemble.dir, `server-${from.id}`, 'zoo.cfg'), 'utf8');
      for (const to of ensemble.servers) {
        if (to === from) continue;
        const link = ensemble.peerLink(from, to);
        realPorts.add(link.quorum.upstreamPort).add(link.election.upstreamPort);
        // Each server names the others at its own proxies for them.
        expect(config).toContain(`server.${to.id}=127.0.0.1:${link.quorum.port}:${link.election.port}\n`);
      }
      expect(config).toMatch(new RegExp(`^server\\.${from.id}=0\\.0\\.0\\.0:\\d+:\\d+$`, 'm'));
    }
    for (const server of ensemble.servers) {
      if (server === leader) continue;
      // A follower's connection to its leader is held by that link's proxy...
      expect(ensemble.peerLink(server, leader).quorum.openConnections).toBe(1);
    }
    // ...and no server holds a connection to another's real quorum or election port.
    for (const server of ensemble.servers) {
      const direct = establishedConnections(server.pid ?? 0).filter((c) => realPorts.has(c.remotePort));
      expect({ server: server.id, direct }).toEqual({ server: server.id, direct: [] });
    }
    expect(ensemble.clientConnectString).toBe(ensemble.servers.map((s) => `127.0.0.1:${ensemble.clientProxy(s).port}`).join(','));
  });

  test('a server killed and restarted rejoins through its proxies', async () => {
    const leader = await currentLeader();
    const follower = ensemble.servers.find((s) => s !== leader) as ZooKeeperServer;
    const link = ensemble.peerLink(follower, leader).quorum;
    const accepted = link.acceptedConnections;
    await follower.kill();
    await follower.start();
    await follower.waitServing(30_000);
    expect(await modeOf(follower)).toBe('follower');
    expect(link.acceptedConnections).toBeGreaterThan(accepted);
    expect(link.openConnections).toBe(1);
  }, 60_000);

  test('the leader cut off (freeze) serves reads — and syncs — on its own until it notices; the others elect a new leader; healed, it follows and has their writes', async () => {
    const leader = await currentLeader();
    const others = ensemble.servers.filter((s) => s !== leader);
    const writer = await session(ensemble.connectString);
    await writer.ensurePath('/cut-leader');
    await writer.create('/cut-leader/before', '', 'persistent');
    const reader = await session(`127.0.0.1:${leader.clientPort}`);
    const dropped = nextEvent(reader, ['disconnected']);
    const syncer = await connectZooKeeper(`127.0.0.1:${leader.clientPort}`, 20_000);
    cleanups.push(() => syncer.close());

    const cutAt = performance.now();
    ensemble.isolate(leader, 'freeze');
    const polling = pollReads(reader, '/cut-leader');
    const synced = settle(
      (async () => {
        await syncer.sync('/cut-leader');
        return (await syncer.get_children('/cut-leader', false)) as string[];
      })(),
    );

    const newLeader = await eventually(async () => {
      for (const s of others) if ((await modeOf(s)) === 'leader') return s;
      return undefined;
    }, 30_000, 'a new leader among the two connected servers');
    const newLeaderAt = performance.now();
    await eventually(async () => ((await modeOf(leader)) === undefined ? true : undefined), 30_000, 'the cut-off leader to stop serving');
    const droppedAt = await droppedWithin(reader, dropped, 60_000, 'the cut-off leader dropping its clients', polling);
    const reads = polling.stop();
    const sync = await synced;

    // It answered reads for a while after the cut, all with what it had: syncLimit ticks
    // without a quorum's acks pass before a leader gives up. Then it dropped its clients.
    const lastRead = reads.at(-1);
    expect(lastRead?.children).toEqual(['before']);
    expect((lastRead?.at ?? cutAt) - cutAt).toBeGreaterThan(syncWindowMs / 2);
    expect(new Set(reads.map((r) => r.children.join(',')))).toEqual(new Set(['before']));
    expect(droppedAt - cutAt).toBeGreaterThan(syncWindowMs / 2);
    // A sync on the leader itself is answered locally, without a quorum: it completes
    // on a cut-off leader, so it proves nothing about still being the leader.
    expect(sync).toMatchObject({ ok: true, value: ['before'] });
    expect(sync.at - cutAt).toBeLessThan(syncWindowMs / 2);
    expect(newLeaderAt - cutAt).toBeGreaterThan(syncWindowMs / 2);
    expect(newLeader).not.toBe(leader);
    expect((await Promise.all(others.map(modeOf))).sort()).toEqual(['follower', 'leader']);

    // The majority takes writes without it.
    const majority = await session(others.map((s) => `127.0.0.1:${s.clientPort}`).join(','));
    await withinMs(majority.create('/cut-leader/during', '', 'persistent'), 10_000, 'create during the cut');

    ensemble.heal();
    await leader.waitServing(30_000);
    expect(await modeOf(leader)).toBe('follower');
    const rejoined = await session(`127.0.0.1:${leader.clientPort}`);
    expect((await rejoined.getChildren('/cut-leader')).sort()).toEqual(['before', 'during']);
  }, 150_000);

  test('a follower cut off (freeze) serves stale reads until it notices; a sync through it does not complete; healed, it catches up', async () => {
    const leader = await currentLeader();
    const [follower, other] = ensemble.servers.filter((s) => s !== leader) as [ZooKeeperServer, ZooKeeperServer];
    const writer = await session(`127.0.0.1:${leader.clientPort}`);
    await writer.ensurePath('/cut-follower');
    await writer.create('/cut-follower/before', '', 'persistent');
    const reader = await session(`127.0.0.1:${follower.clientPort}`);
    const dropped = nextEvent(reader, ['disconnected']);
    await eventually(async () => ((await reader.getChildren('/cut-follower')).includes('before') ? true : undefined), 10_000, 'the follower to see /before');
    const syncer = await connectZooKeeper(`127.0.0.1:${follower.clientPort}`, 20_000);
    cleanups.push(() => syncer.close());

    const cutAt = performance.now();
    ensemble.isolate(follower, 'freeze');
    await withinMs(writer.create('/cut-follower/during', '', 'persistent'), 10_000, 'create during the cut');
    const writtenAt = performance.now();
    const polling = pollReads(reader, '/cut-follower');
    const synced = settle(
      (async () => {
        await syncer.sync('/cut-follower');
        return (await syncer.get_children('/cut-follower', false)) as string[];
      })(),
    );
    await eventually(async () => ((await modeOf(follower)) === undefined ? true : undefined), 30_000, 'the cut-off follower to stop serving');
    const droppedAt = await droppedWithin(reader, dropped, 60_000, 'the cut-off follower dropping its clients', polling);
    const reads = polling.stop();
    const sync = await synced;

    // Acknowledged writes it does not show: stale reads, for a while after the write.
    // Then it dropped its clients.
    expect(reads.length).toBeGreaterThan(0);
    for (const read of reads) expect(read.children).toEqual(['before']);
    expect((reads.at(-1)?.at ?? writtenAt) - writtenAt).toBeGreaterThan(syncWindowMs / 4);
    expect(droppedAt - cutAt).toBeGreaterThan(syncWindowMs / 2);
    // A follower forwards a sync to its leader: it never completes across the cut, and
    // fails when the follower gives up on its leader.
    expect(sync).toMatchObject({ ok: false, error: expect.stringMatching(/connection loss|-4/i) });
    expect(sync.at - cutAt).toBeGreaterThan(syncWindowMs / 2);
    // The leader and the other follower never noticed anything.
    expect(await modeOf(leader)).toBe('leader');
    expect(await modeOf(other)).toBe('follower');

    ensemble.heal();
    await follower.waitServing(30_000);
    expect(await modeOf(follower)).toBe('follower');
    const rejoined = await session(`127.0.0.1:${follower.clientPort}`);
    expect((await rejoined.getChildren('/cut-follower')).sort()).toEqual(['before', 'during']);
  }, 150_000);

  test('a link cut between the two followers leaves the ensemble serving: they still reach each other through the leader', async () => {
    const leader = await currentLeader();
    const [low, high] = ensemble.servers.filter((s) => s !== leader) as [ZooKeeperServer, ZooKeeperServer];
    // Election connections run from the higher id to the lower; one is open between them.
    const election = ensemble.peerLink(high, low).election;
    expect(election.openConnections).toBe(1);

    ensemble.cutLink(low, high, 'drop');
    expect(election.openConnections).toBe(0);
    // Longer than a cut-off server would go on serving.
    await sleep(syncWindowMs + 1000);
    expect(await modeOf(leader)).toBe('leader');
    expect(await modeOf(low)).toBe('follower');
    expect(await modeOf(high)).toBe('follower');
    const writer = await session(ensemble.connectString);
    await writer.ensurePath('/cut-followers');
    for (const server of [low, high]) {
      const through = await session(`127.0.0.1:${server.clientPort}`);
      await withinMs(through.create(`/cut-followers/via-${server.id}`, '', 'persistent'), 10_000, `create through server ${server.id}`);
    }
    expect((await writer.getChildren('/cut-followers')).sort()).toEqual([`via-${low.id}`, `via-${high.id}`]);
  }, 60_000);

  test('clients of a server cut off (drop) are disconnected at once; the servers stay in quorum; healed, the session resumes', async () => {
    const leaderBefore = await currentLeader();
    const server = ensemble.servers.find((s) => s !== leaderBefore) as ZooKeeperServer;
    const client = await session(`127.0.0.1:${ensemble.clientProxy(server).port}`, 10_000);
    const sessionId = client.sessionId;
    const disconnected = nextEvent(client, ['disconnected']);

    const cutAt = performance.now();
    ensemble.cutClients(server, 'drop');
    // Far sooner than the client's own timeout (2/3 of 10 s) could notice silence.
    expect((await withinMs(disconnected, 5000, 'disconnect')) - cutAt).toBeLessThan(2000);
    await expect(server.fourLetterWord('ruok', 1000)).resolves.toBe('imok');
    expect(ensemble.clientProxy(server).acceptedConnections).toBeGreaterThan(0);
    expect((await Promise.all(ensemble.servers.map(modeOf))).sort()).toEqual(['follower', 'follower', 'leader']);
    expect(await ensemble.leader()).toBe(leaderBefore);

    const reconnected = nextEvent(client, ['connected']);
    ensemble.cutClients(server, 'pass');
    await withinMs(reconnected, 15_000, 'reconnect after heal');
    expect(client.sessionId).toBe(sessionId);
    expect(await client.getChildren('/')).toContain('zookeeper');
  }, 60_000);

  test('clients of a server cut off (freeze) hear nothing and time out; the servers stay in quorum', async () => {
    const leaderBefore = await currentLeader();
    const server = ensemble.servers.find((s) => s !== leaderBefore) as ZooKeeperServer;
    const sessionTimeoutMs = 3000;
    const client = await session(`127.0.0.1:${ensemble.clientProxy(server).port}`, sessionTimeoutMs);
    const lost = nextEvent(client, ['disconnected', 'closed']);

    const cutAt = performance.now();
    ensemble.cutClients(server, 'freeze');
    const read = settle(client.getChildren('/'));
    const lostAt = await withinMs(lost, 3 * sessionTimeoutMs, 'disconnect');
    // Silence, not a reset: the client gives up only once it has heard nothing for
    // 2/3 of its session timeout.
    expect(lostAt - cutAt).toBeGreaterThan(sessionTimeoutMs / 3);
    expect(await read).toMatchObject({ ok: false, error: expect.stringMatching(/OPERATIONTIMEOUT|CONNECTIONLOSS/) });
    expect((await Promise.all(ensemble.servers.map(modeOf))).sort()).toEqual(['follower', 'follower', 'leader']);
    expect(await ensemble.leader()).toBe(leaderBefore);
  }, 60_000);

  test('a delay on a client link adds it to every round trip, both ways', async () => {
    const server = ensemble.servers[0] as ZooKeeperServer;
    const client = await session(`127.0.0.1:${ensemble.clientProxy(server).port}`);
    const roundTrip = async (): Promise<number> => {
      const started = performance.now();
      await client.exists('/');
      return performance.now() - started;
    };
    const delayMs = 250;
    ensemble.cutClients(server, { delayMs });
    const delayed = await roundTrip();
    expect(delayed).toBeGreaterThanOrEqual(2 * delayMs);
    ensemble.cutClients(server, 'pass');
    expect(await roundTrip()).toBeLessThan(delayed);
    expect(await roundTrip()).toBeLessThan(2 * delayMs);
  }, 30_000);

  test('a delay on the leader\'s links slows every write by at least a round trip to a follower', async () => {
    const leader = await currentLeader();
    const writer = await session(`127.0.0.1:${leader.clientPort}`);
    await writer.ensurePath('/delayed');
    const delayMs = 200;
    ensemble.isolate(leader, { delayMs });
    const started = performance.now();
    // The proposal reaches a follower, and its ack comes back, each delayMs late.
    await withinMs(writer.create('/delayed/write', '', 'persistent'), 10_000, 'create with delayed links');
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * delayMs);
    // Well under syncLimit ticks: nobody gave up on anybody.
    expect(await modeOf(leader)).toBe('leader');
  }, 30_000);
});

describe('an ensemble started without partitionable', () => {
  let ensemble: ZooKeeperEnsemble | undefined;
  afterAll(() => ensemble?.close());

  test('has no proxies, and says so when asked to cut', async () => {
    ensemble = await ZooKeeperEnsemble.start({ size: 1 });
    const [server] = ensemble.servers as [ZooKeeperServer];
    expect(ensemble.partitionable).toBe(false);
    expect(() => ensemble?.clientConnectString).toThrow(/cannot use clientConnectString: this ensemble was started without \{ partitionable: true \}/);
    expect(() => ensemble?.isolate(server, 'drop')).toThrow(/cannot isolate a server: .*partitionable/);
    expect(() => ensemble?.cutClients(server, 'freeze')).toThrow(/cannot get a client proxy/);
    expect(() => ensemble?.heal()).not.toThrow();
  });

  test('refuses partitionable with fewer than 3 servers', async () => {
    await expect(ZooKeeperEnsemble.start({ size: 1, partitionable: true })).rejects.toThrow(/a partitionable ensemble needs 3 servers .*got size 1/);
  });
});
