// Config propagation (issue 13): `config set` returning → every sidecar's files switched.
// Real ZooKeeper (3 servers), real config-only sidecar processes (one process each, as in
// pods), the store's set() in this process (what `zkleader config set` runs, without the
// CLI's start-up). Run: npm run bench:config. Prints a Markdown section for bench/RESULTS.md.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SIDECAR_NODE_OPTIONS } from '../src/buildSidecar.js';
import { percentile } from './pacedLoad.js';
import { SidecarProcess } from '../test/support/sidecarProcess.js';
import { ZooKeeperEnsemble } from '../test/support/zookeeperEnsemble.js';
import { ConfigStore } from '../zookeeper/configStore.js';
import { ZooKeeperSession } from '../zookeeper/session.js';

const updates = Number(process.env.CONFIG_UPDATES ?? 50);
const fleet = Number(process.env.CONFIG_FLEET ?? 100);

function versionOn(s: SidecarProcess, name: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(join(s.dir, 'config.json'), 'utf8')) as Record<string, { version: number }>)[name]?.version;
  } catch {
    return undefined;
  }
}

/** Milliseconds from `start` until every sidecar's config.json shows `version` (polled every 1 ms). */
async function untilEverywhere(group: readonly SidecarProcess[], name: string, version: number, start: bigint): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (group.every((s) => versionOn(s, name) === version)) return Number(process.hrtime.bigint() - start) / 1e6;
    if (Date.now() > deadline) throw new Error(`version ${version} of ${name} not on every sidecar within 30 s`);
    await sleep(1);
  }
}

async function series(store: ConfigStore, group: readonly SidecarProcess[], name: string, count: number): Promise<number[]> {
  const times: number[] = [];
  let version = await store.set('bench', name, { v: '0' });
  await untilEverywhere(group, name, version, process.hrtime.bigint());
  for (let i = 1; i <= count; i++) {
    version = await store.set('bench', name, { v: String(i), payload: 'x'.repeat(1024) });
    const t0 = process.hrtime.bigint();
    times.push(await untilEverywhere(group, name, version, t0));
  }
  return times.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const ensemble = await ZooKeeperEnsemble.start({ size: 3 });
  const all: SidecarProcess[] = [];
  const session = new ZooKeeperSession({ connectString: ensemble.connectString, sessionTimeoutMs: 10_000 });
  await new Promise((resolve) => session.once('connected', () => resolve(undefined)));
  const store = new ConfigStore(session, { root: '/zkleader' });
  const start = async (name: string, i: number) => {
    const s = await SidecarProcess.start({
      zookeeper: ensemble.connectString,
      election: '',
      namespace: 'bench',
      podName: `${name}-${i}`,
      env: { NODE_OPTIONS: SIDECAR_NODE_OPTIONS },
      extraArgs: ['--configs', name],
    });
    all.push(s);
    return s;
  };
  try {
    const three = await Promise.all([0, 1, 2].map((i) => start('three', i)));
    const small = await series(store, three, 'three', updates);
    await Promise.all(three.map((s) => s.close()));
    const started = Date.now();
    const many: SidecarProcess[] = [];
    for (let i = 0; i < fleet; i += 10) many.push(...(await Promise.all(Array.from({ length: Math.min(10, fleet - i) }, (_, j) => start('fleet', i + j)))));
    const startSeconds = (Date.now() - started) / 1000;
    const large = await series(store, many, 'fleet', Math.min(updates, 20));
    const fmt = (x: number) => x.toFixed(1);
    const lines = [
      '## Configuration',
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, a 3-node ZooKeeper 3.8 ensemble on loopback; config-only sidecar processes (one process per sidecar, as in pods, with the injected NODE_OPTIONS); each update sets two keys (1 KiB); time from \`ConfigStore.set()\` returning (what \`zkleader config set\` runs, without the CLI's start-up of about 0.3 s) until every sidecar's config.json names the new version, polled every 1 ms. \`npm run bench:config\`.`,
      '',
      '| measure | result | target |',
      '|---|---|---|',
      `| 3 sidecars, ${small.length} updates | p50 ${fmt(percentile(small, 50))} ms, p99 ${fmt(percentile(small, 99))} ms (max ${fmt(small.at(-1) ?? NaN)}) | p99 < 50 ms |`,
      `| ${fleet} sidecars (${fleet} processes, started in ${startSeconds.toFixed(0)} s), ${large.length} updates | p50 ${fmt(percentile(large, 50))} ms, p99 ${fmt(percentile(large, 99))} ms (max ${fmt(large.at(-1) ?? NaN)}) | |`,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    session.close();
    await Promise.all(all.map((s) => s.close()));
    await ensemble.close();
  }
}

await main();
