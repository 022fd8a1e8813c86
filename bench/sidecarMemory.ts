// Sidecar memory (issue 15): idle RSS of labelling sidecars (an Event recorded and a
// Prometheus scrape done) with three members and with 1,000, and the peak RSS (VmHWM) under
// faults — ZooKeeper down, the API down, a 1 MiB config — from which the injected memory
// limit is set. Real 3-node ZooKeeper, the API emulator, real sidecar processes with the
// injected NODE_OPTIONS. Run: npm run bench:sidecar-memory. Prints a Markdown section.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SIDECAR_NODE_OPTIONS } from '../src/buildSidecar.js';
import { ApiEmulator } from '../test/support/apiEmulator/index.js';
import { kubeconfigDocument } from '../test/support/apiEmulator/kubeconfig.js';
import { SidecarProcess, waitForAgreement } from '../test/support/sidecarProcess.js';
import { ZooKeeperEnsemble } from '../test/support/zookeeperEnsemble.js';
import { candidatePrefix } from '../zookeeper/candidateNode.js';
import { ConfigStore, DEFAULT_MAX_VERSION_BYTES } from '../zookeeper/configStore.js';
import { ZooKeeperSession } from '../zookeeper/session.js';

const sessionTimeoutMs = 4000;
const members = Number(process.env.MEMBERS ?? 1000);
const namespace = 'test';
const election = 'mem';
/** The injected NODE_OPTIONS, or others to compare (SIDECAR_NODE_OPTIONS='...'). */
const nodeOptions = process.env.SIDECAR_NODE_OPTIONS ?? SIDECAR_NODE_OPTIONS;

/** VmRSS and VmHWM (the peak) of a process, in MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(100);
  }
}

async function connected(connectString: string): Promise<ZooKeeperSession> {
  const session = new ZooKeeperSession({ connectString, sessionTimeoutMs: 30_000 });
  await new Promise((resolve) => session.once('connected', () => resolve(undefined)));
  return session;
}

async function main(): Promise<void> {
  const ensemble = await ZooKeeperEnsemble.start({ size: 3 });
  const api = await ApiEmulator.start();
  // JSON, which is YAML too: a YAML kubeconfig would load the YAML parser (about 8 MiB), which
  // the sidecar in a cluster (token and CA files, no kubeconfig) never does.
  const dir = mkdtempSync(join(tmpdir(), 'zkleader-bench-memory-'));
  const kubeconfig = join(dir, 'kubeconfig.json');
  writeFileSync(kubeconfig, JSON.stringify(kubeconfigDocument({ server: api.url, token: api.token, namespace })), { mode: 0o600 });
  const all: SidecarProcess[] = [];
  let n = 0;
  const start = async (configs?: string) => {
    const podName = `${election}-${n++}`;
    api.putPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: podName, namespace, labels: { 'zkleader.io/election': election } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } });
    const s = await SidecarProcess.start({
      zookeeper: ensemble.connectString,
      election,
      podName,
      namespace,
      sessionTimeout: `${sessionTimeoutMs}ms`,
      kubeconfig,
      env: { NODE_OPTIONS: nodeOptions },
      ...(configs && { extraArgs: ['--configs', configs] }),
    });
    all.push(s);
    return s;
  };
  const scrape = async (group: readonly SidecarProcess[]) => {
    for (const s of group) {
      const { status } = await s.http('/metrics');
      if (status !== 200) throw new Error(`GET /metrics of ${s.podName}: ${status}`);
    }
  };
  const settle = async (group: readonly SidecarProcess[]) => {
    await waitForAgreement(group, 30_000);
    await until('an Event of the leader', () => api.events(namespace).some((e) => e.reason === 'LeaderElected'), 10_000);
    await scrape(group);
    await sleep(5000);
  };
  const rows: string[] = [];
  const fmt = (x: number) => x.toFixed(1);
  const row = (what: string, group: readonly SidecarProcess[]) => {
    const m = group.filter((s) => s.alive).map((s) => memory(s.pid));
    rows.push(`| ${what} | ${m.map((x) => fmt(x.rss)).join(', ')} MiB | ${fmt(Math.max(...m.map((x) => x.peak)))} MiB |`);
    return m;
  };
  let padding: ZooKeeperSession | null = null;
  let writer: ZooKeeperSession | null = null;
  try {
    // Three members, labelling, an Event recorded, a scrape done.
    const trio = [await start(), await start(), await start()];
    await settle(trio);
    const idle3 = row('idle, three members (leader first)', trio);

    // 1,000 members: the three and candidates that never lead, made after them (so later in line).
    padding = await connected(ensemble.connectString);
    const path = `/zkleader/${namespace}/${election}`;
    const data = (i: number) => JSON.stringify({ pod: `pad-${i}`, ip: '10.0.0.1', uid: randomUUID(), namespace, startedAt: new Date().toISOString() });
    for (let i = 0; i < members - trio.length; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, members - trio.length - i) }, (_, j) => padding?.create(`${path}/${candidatePrefix(randomUUID())}`, data(i + j), 'ephemeral-sequential')));
    }
    await until(`${members} candidates`, async () => (await padding?.getChildren(path))?.length === members, 30_000);
    await sleep(3 * sessionTimeoutMs);
    await scrape(trio);
    await sleep(5000);
    const idle1000 = row(`idle, ${members} members (three sidecars, the rest candidates that never lead)`, trio);
    padding.close();
    padding = null;
    await waitForAgreement(trio, 30_000);

    // Faults. ZooKeeper down: every server stopped for three session timeouts, then back.
    await Promise.all(ensemble.servers.map((s) => s.stop()));
    await sleep(3 * sessionTimeoutMs);
    await scrape(trio);
    row('ZooKeeper down for 12 s', trio);
    await Promise.all(ensemble.servers.map((s) => s.start()));
    await ensemble.waitForQuorum();
    await waitForAgreement(trio, 60_000);

    // The API down (503 to every request) while leadership moves: the labels and Events retry and fail.
    const faults = (['get', 'list', 'patch', 'create'] as const).flatMap((verb) => (['pods', 'events'] as const).map((resource) => api.addFault({ verb, resource, status: 503 })));
    const { leader } = await waitForAgreement(trio, 30_000);
    await leader.stop();
    const rest = trio.filter((s) => s !== leader);
    rest.push(await start());
    await waitForAgreement(rest, 30_000);
    await sleep(15_000);
    await scrape(rest);
    row('API answering 503 for 15 s, leadership moved', rest);
    for (const clear of faults) clear();
    await sleep(3000);

    // A config of 1 MiB (the most ZooKeeper takes), followed by a labelling member, written three times.
    writer = await connected(ensemble.connectString);
    const store = new ConfigStore(writer, { root: '/zkleader' });
    const big = (v: number) => ({ blob: `${v}`.padEnd(DEFAULT_MAX_VERSION_BYTES - 8192, 'x') });
    await store.set(namespace, 'big', big(0));
    const follower = await start('big');
    rest.push(follower);
    for (let v = 1; v <= 3; v++) {
      await store.set(namespace, 'big', big(v));
      await until(`config version ${v + 1} on disk`, async () => JSON.parse((await follower.http('/config')).body)?.big?.version === v + 1, 30_000);
    }
    await scrape(rest);
    await sleep(3000);
    row('a 1 MiB config followed, three versions (the last member)', rest);

    const peak = Math.max(...all.filter((s) => s.alive).map((s) => memory(s.pid).peak));
    const lines = [
      '## Sidecar memory',
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores, Node ${process.version}, a 3-node ZooKeeper on loopback, the API emulator (a JSON --kubeconfig), every sidecar labelling its pod with NODE_OPTIONS ${JSON.stringify(nodeOptions)}${nodeOptions === SIDECAR_NODE_OPTIONS ? ' (the injected ones)' : ''}. RSS is VmRSS, peak is VmHWM (the most the process held since it started). \`npm run bench:sidecar-memory\`.`,
      '',
      '| state | RSS per sidecar | peak of any |',
      '|---|---|---|',
      ...rows,
      '',
      `Idle, three members: max ${fmt(Math.max(...idle3.map((m) => m.rss)))} MiB (target ≤ 64 MiB); ${members} members: max ${fmt(Math.max(...idle1000.map((m) => m.rss)))} MiB (target ≤ 80 MiB). Peak of any sidecar over the run: ${fmt(peak)} MiB.`,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    padding?.close();
    writer?.close();
    await Promise.all(all.map((s) => s.close()));
    await ensemble.close();
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
