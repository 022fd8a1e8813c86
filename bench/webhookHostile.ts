// Webhook under hostile load: the real `bin/zkleader webhook` process, its RSS sampled from
// /proc/PID/status (VmRSS every 20 ms, and VmHWM, the kernel's own peak, reset per phase),
// while a client sends real AdmissionReviews (a new one every 50 ms, over keep-alive
// connections, as the API server does) and records whether and how fast each is answered:
//   (a) 64 concurrent 1.5 MiB hostile bodies, deeply nested arrays and many small arrays,
//       sent again as soon as each is answered;
//   (a') the same with the worst bodies the limits let through: valid reviews of 1.5 MiB
//       just under the depth, object/array and member limits;
//   (b) 4,000 TCP connections that never send a TLS ClientHello, each opened again when
//       the webhook closes it.
// The attacks run in a worker thread, the legit client in the main thread. Every phase runs
// twice: with V8's heap sized as Node sizes it under the pod's 192 MiB limit, and as it sizes
// it for this host's memory (see heapSizings).
// Run: npm run bench:webhook-hostile. Prints a Markdown section for bench/RESULTS.md.
// BENCH_SECONDS: length of each phase (15). BENCH_ZKLEADER_BIN: another build's bin/zkleader.
// BENCH_PHASES: some of the phases only, e.g. "a,b" (quiet, a, a', b).
// BENCH_WEBHOOK_NODE_OPTIONS: NODE_OPTIONS of the webhook process, measured alone (by default
// both heap sizings below).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parse as parseYaml } from 'yaml';
import { JSON_SHAPE_LIMITS } from '../src/admissionLimits.js';
import { checkJsonShape, describeJsonShapeViolation } from '../src/jsonShape.js';
import { releaseLoopbackPorts, reserveLoopbackPorts } from '../test/support/loopbackPorts.js';
import { repoRoot, zkleaderBin } from '../test/support/repoRoot.js';
import { percentile } from './pacedLoad.js';
import { writeWebhookFiles } from './webhookFiles.js';

const phaseSeconds = Number(process.env.BENCH_SECONDS ?? 15);
const bin = process.env.BENCH_ZKLEADER_BIN ?? zkleaderBin;
const onlyPhases = process.env.BENCH_PHASES?.split(',');
const webhookNodeOptions = process.env.BENCH_WEBHOOK_NODE_OPTIONS;
const hostileConnections = 64;
const idleConnections = 4_000;
const legitIntervalMs = 50;
/** What the API server waits for an answer at most (its default timeoutSeconds is 10). */
const legitTimeoutMs = 10_000;
const MiB = 1024 * 1024;
const hostileBytes = 1.5 * MiB;

function review(uid: string, object: unknown): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'default',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object,
    },
  });
}

/** A pod that opts in: every legit review is injected. */
const legitPod = parseYaml(readFileSync(join(repoRoot, 'test', 'golden', 'inject', 'bare-pod.yaml'), 'utf8')) as unknown;

/** `[[[[...]]]]`: one array in another, 1.5 MiB of them. */
function nestedArrays(bytes: number): Buffer {
  const half = Math.floor(bytes / 2);
  return Buffer.concat([Buffer.alloc(half, '['), Buffer.alloc(half, ']')]);
}

/** `[[],[],...]`: as many empty arrays as fit in 1.5 MiB (about 520,000). */
function smallArrays(bytes: number): Buffer {
  const count = Math.floor((bytes - 2) / 3);
  return Buffer.from(`[${Array.from({ length: count }, () => '[]').join(',')}]`);
}

/**
 * A valid review of about `bytes` just under every shape limit of src/admissionLimits.ts:
 * as many one-key objects with distinct keys as the member limit allows (the member cost
 * that grows fastest, in V8 hidden classes), empty arrays up to the object/array limit, an
 * array nested to the depth limit, and the rest of the bytes in short distinct strings
 * (a value each). The costliest body the limits admit that we know of.
 */
function worstAdmissible(bytes: number): Buffer {
  const { maxDepth, maxContainers, maxMembers } = JSON_SHAPE_LIMITS;
  // The review itself takes a few levels, objects and members.
  const keyed = Math.min(maxMembers, maxContainers) - 100;
  const objects = Array.from({ length: keyed }, (_, i) => `{"k${i.toString(36)}":${i}}`).join(',');
  const arrays = Array.from({ length: Math.max(0, maxContainers - keyed - 200) }, () => '[]').join(',');
  let deep = '0';
  for (let i = 0; i < maxDepth - 6; i++) deep = `[${deep}]`;
  const head = review('hostile', { metadata: { name: 'hostile', annotations: {} }, spec: { containers: [{ name: 'app', image: 'app' }] }, x: '@@' });
  const fixed = head.length + objects.length + arrays.length + deep.length + 16;
  const strings: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes - fixed; i++) {
    const s = `"s${i.toString(36)}"`;
    strings.push(s);
    size += s.length + 1;
  }
  const body = Buffer.from(head.replace('"@@"', `[${[objects, arrays, deep, `[${strings.join(',')}]`].filter((part) => part !== '').join(',')}]`));
  const violation = checkJsonShape(body, JSON_SHAPE_LIMITS);
  if (violation) throw new Error(`the "admissible" body is not: ${describeJsonShapeViolation(violation)}`);
  return body;
}

function status(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Resets the kernel's peak RSS of the process (VmHWM), so it covers the phase only. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

class RssSampler {
  peak = 0;
  samples = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 20);
    this.sample();
  }
  private sample(): void {
    try {
      // An exited process (a zombie until reaped) has no VmRSS: NaN, not a sample.
      const rss = status(this.pid, 'VmRSS');
      if (Number.isNaN(rss)) return;
      this.peak = Math.max(this.peak, rss);
      this.samples++;
    } catch {
      // the process has exited
    }
  }
  stop(): number {
    clearInterval(this.timer);
    return this.peak;
  }
}

interface LegitResult {
  sent: number;
  answered: number;
  failed: number;
  failures: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
}

/** Real reviews, one every 50 ms whatever the answers, over up to 4 keep-alive connections. */
function legitClient(port: number, ca: string): { stop: () => Promise<LegitResult> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 4, ca });
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  const pending = new Set<Promise<void>>();
  let sent = 0;
  const fail = (why: string) => (failures[why] = (failures[why] ?? 0) + 1);
  const fire = () => {
    const uid = `legit-${sent++}`;
    const body = review(uid, legitPod);
    const start = performance.now();
    const done = new Promise<void>((settle) => {
      let settled = false;
      /** Each request ends once: answered (latency) or failed (why). */
      const end = (failure?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (failure === undefined) latencies.push(performance.now() - start);
        else fail(failure);
        settle();
      };
      const req = request(
        { host: '127.0.0.1', port, path: '/mutate', method: 'POST', agent, servername: 'localhost', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => end(res.statusCode === 200 && text.includes(`"uid":"${uid}"`) && text.includes('"patchType":"JSONPatch"') ? undefined : `HTTP ${res.statusCode}`));
          res.on('error', () => end('response error'));
        },
      );
      // A hard deadline, as the API server's: an answer later than this is a failure.
      const deadline = setTimeout(() => {
        end(`no answer within ${legitTimeoutMs / 1000} s`);
        req.destroy();
      }, legitTimeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => end(err.code ?? err.message));
      req.end(body);
    });
    pending.add(done);
    void done.then(() => pending.delete(done));
  };
  const timer = setInterval(fire, legitIntervalMs);
  fire();
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all(pending);
      agent.destroy();
      const sorted = latencies.sort((a, b) => a - b);
      const failed = Object.values(failures).reduce((a, b) => a + b, 0);
      return { sent, answered: sorted.length, failed, failures, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
    },
  };
}

/** `hostileConnections` clients each sending `bodies` in turn, again as soon as one is answered. */
function hostileClients(port: number, bodies: Buffer[]): { stop: () => Promise<Record<string, number>> } {
  const agent = new Agent({ keepAlive: true, maxSockets: hostileConnections, rejectUnauthorized: false });
  const answers: Record<string, number> = {};
  let stopped = false;
  const count = (what: string) => (answers[what] = (answers[what] ?? 0) + 1);
  const post = (body: Buffer) =>
    new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length }, timeout: 30_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          count(`HTTP ${res.statusCode}`);
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        count(err.code ?? err.message);
        resolve();
      });
      req.end(body);
    });
  const workers = Array.from({ length: hostileConnections }, async (_, i) => {
    for (let n = i; !stopped; n++) {
      await post(bodies[n % bodies.length] as Buffer);
      // A connection refused or reset: do not spin.
      if (!stopped && answers.ECONNREFUSED) await sleep(100);
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      agent.destroy();
      return answers;
    },
  };
}

/** `count` TCP connections that send nothing; each one the webhook closes is opened again. */
function idleTcpConnections(port: number, count: number): { opened: () => number; stop: () => { opens: number; closedByServer: number } } {
  const sockets = new Set<Socket>();
  let stopped = false;
  let opens = 0;
  let closedByServer = 0;
  const open = () => {
    if (stopped) return;
    opens++;
    const socket = connect({ host: '127.0.0.1', port });
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      if (stopped) return;
      closedByServer++;
      setTimeout(open, 10);
    });
  };
  // In batches: the listen backlog is finite.
  void (async () => {
    for (let i = 0; i < count && !stopped; i += 200) {
      for (let j = i; j < Math.min(count, i + 200); j++) open();
      await sleep(50);
    }
  })();
  return {
    opened: () => sockets.size,
    stop: () => {
      stopped = true;
      for (const socket of sockets) socket.destroy();
      return { opens, closedByServer };
    },
  };
}

async function metric(metricsPort: number, name: string): Promise<Record<string, number>> {
  const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text(), () => '');
  const found: Record<string, number> = {};
  for (const match of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\d+)$`, 'gm'))) found[match[1] as string] = Number(match[2]);
  return found;
}

async function waitAnswering(port: number, ca: string, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && alive()) {
    const client = legitClient(port, ca);
    await sleep(10);
    const result = await client.stop();
    if (result.answered > 0) return;
    await sleep(200);
  }
  throw new Error(`the webhook does not answer on 127.0.0.1:${port}`);
}

interface Phase {
  name: string;
  baseline: number;
  peakSampled: number;
  peakKernel: number | undefined;
  legit: LegitResult;
  detail: string;
  warnLines: number;
  exit: string | undefined;
}

interface Webhook {
  pid: number;
  alive: () => boolean;
  exit: () => string | undefined;
  /** Lines the webhook logged at warn or above so far. */
  warnLines: () => number;
  stderr: () => string;
  stop: () => Promise<void>;
}

function startWebhook(args: string[], nodeOptions: string): Webhook {
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot, env: { ...process.env, ZKLEADER_LOG_LEVEL: 'info', NODE_OPTIONS: nodeOptions } });
  // The webhook logs JSON lines on stderr: those at warn and above are counted (is the log flooded?).
  let warnLines = 0;
  let stderr = '';
  let partial = '';
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (/"level":(4|5|6)0/.test(line)) warnLines++;
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exit = `exited (code ${code}, signal ${signal})`;
      resolve();
    }),
  );
  return {
    pid: child.pid as number,
    alive: () => exit === undefined,
    exit: () => exit,
    warnLines: () => warnLines,
    stderr: () => stderr,
    stop: async () => {
      if (exit === undefined) child.kill('SIGTERM');
      await exited;
    },
  };
}

const describeAnswers = (answers: Record<string, number>) =>
  Object.entries(answers)
    .sort(([, a], [, b]) => b - a)
    .map(([what, n]) => `${n} × ${what}`)
    .join(', ');

type Attack = { kind: 'bodies'; port: number; bodies: ('nested' | 'small' | 'worst')[] } | { kind: 'idle'; port: number; metricsPort: number };

/** The attack runs in a worker thread: its event loop busy sending cannot delay the legit client's. */
function startAttack(attack: Attack): { stop: () => Promise<string> } {
  const worker = new Worker(new URL(import.meta.url), { workerData: attack });
  const result = new Promise<string>((resolve, reject) => {
    worker.once('message', (message: string) => resolve(message));
    worker.once('error', reject);
  });
  return {
    stop: async () => {
      worker.postMessage('stop');
      const summary = await result;
      await worker.terminate();
      return summary;
    },
  };
}

/** In the worker: runs the attack until the main thread says stop, then answers with a summary. */
async function runAttack(attack: Attack): Promise<void> {
  const stopped = new Promise<void>((resolve) => parentPort?.once('message', () => resolve()));
  let summary: string;
  if (attack.kind === 'bodies') {
    const make = { nested: nestedArrays, small: smallArrays, worst: worstAdmissible };
    const clients = hostileClients(
      attack.port,
      attack.bodies.map((kind) => make[kind](hostileBytes)),
    );
    await stopped;
    summary = `hostile answers: ${describeAnswers(await clients.stop())}`;
  } else {
    const idle = idleTcpConnections(attack.port, idleConnections);
    await stopped;
    const { opens, closedByServer } = idle.stop();
    const closed = await metric(attack.metricsPort, 'zkleader_webhook_connections_closed_total');
    const counts = Object.entries(closed)
      .map(([labels, n]) => `${labels.replace(/^reason="(.*)"$/, '$1')} ${n}`)
      .join(', ');
    summary = `${opens} connections opened, ${closedByServer} closed by the webhook${counts ? ` (${counts})` : ''}`;
  }
  parentPort?.postMessage(summary);
}

/**
 * How V8 sizes its heap. In its pod the webhook runs under a 192 MiB memory limit, and Node
 * sizes V8's heap from the cgroup's limit: for 192 MiB, a 256 MB old generation and a 1 MB
 * semi-space (heap_size_limit 259 MB; checked on Node 24 with the limit file reading 192
 * MiB). These two flags give the same sizes here, where the host's memory (not a cgroup
 * limit) would make V8 size its heap for many GB and collect far later. Both are measured.
 */
const heapSizings = [
  { name: 'as in its pod (V8 sized for the 192 MiB limit)', nodeOptions: webhookNodeOptions ?? '--max-old-space-size=256 --max-semi-space-size=1' },
  ...(webhookNodeOptions === undefined ? [{ name: "with V8 sized for this host's memory (no limit)", nodeOptions: '' }] : []),
];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'zkleader-bench-hostile-'));
  const ports = await reserveLoopbackPorts(2);
  const [port = 0, metricsPort = 0] = ports;
  try {
    const { ca, certFile, keyFile, configFile } = await writeWebhookFiles(dir);
    const args = ['webhook', '--drain', '0', '--listen', `127.0.0.1:${port}`, '--metrics-listen', `127.0.0.1:${metricsPort}`, '--tls-cert', certFile, '--tls-key', keyFile, '--config', configFile];
    const fmt = (n: number | undefined, digits = 1) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits));
    const tables: string[] = [];

    for (const sizing of heapSizings) {
      const phases: Phase[] = [];
      /** A fresh webhook process per phase: RSS the kernel does not take back cannot carry over. */
      const runPhase = async (key: string, name: string, attack: () => { stop: () => Promise<string> | string }) => {
        if (onlyPhases && !onlyPhases.includes(key)) return;
        const webhook = startWebhook(args, sizing.nodeOptions);
        try {
          await waitAnswering(port, ca.certPem, webhook.alive);
          // Warm-up: JIT, TLS, the first admissions; then the RSS at rest.
          const warm = legitClient(port, ca.certPem);
          await sleep(2_000);
          await warm.stop();
          await sleep(2_000);
          const samples: number[] = [];
          for (let i = 0; i < 10; i++) {
            samples.push(status(webhook.pid, 'VmRSS'));
            await sleep(100);
          }
          const baseline = samples.reduce((a, b) => a + b, 0) / samples.length;
          const resettable = resetPeak(webhook.pid);
          const warnBefore = webhook.warnLines();
          const sampler = new RssSampler(webhook.pid);
          const legit = legitClient(port, ca.certPem);
          const running = attack();
          await sleep(phaseSeconds * 1000);
          // The legit client first: its requests all fall within the attack.
          const legitResult = await legit.stop();
          const detail = await running.stop();
          const peakSampled = sampler.stop();
          const peakKernel = resettable && webhook.alive() ? status(webhook.pid, 'VmHWM') : undefined;
          phases.push({ name, baseline, peakSampled, peakKernel, legit: legitResult, detail, warnLines: webhook.warnLines() - warnBefore, exit: webhook.exit() });
          process.stderr.write(
            `${sizing.name}, ${name}: baseline ${baseline.toFixed(1)} MiB, peak ${peakSampled.toFixed(1)} MiB sampled, ${peakKernel?.toFixed(1) ?? '?'} MiB VmHWM; ` +
              `legit ${JSON.stringify(legitResult)}; ${detail}; ${webhook.exit() ?? 'alive'}\n`,
          );
          if (!webhook.alive()) process.stderr.write(`${webhook.stderr().slice(-3000)}\n`);
        } finally {
          await webhook.stop();
        }
      };

      await runPhase('quiet', 'no attack (the legit client alone)', () => ({ stop: () => '–' }));
      await runPhase('a', `(a) ${hostileConnections} concurrent 1.5 MiB bodies, nested arrays / small arrays`, () => startAttack({ kind: 'bodies', port, bodies: ['nested', 'small'] }));
      await runPhase("a'", `(a') ${hostileConnections} concurrent 1.5 MiB valid reviews just under the shape limits`, () => startAttack({ kind: 'bodies', port, bodies: ['worst'] }));
      await runPhase('b', `(b) ${idleConnections.toLocaleString('en')} TCP connections without a ClientHello`, () => startAttack({ kind: 'idle', port, metricsPort }));

      tables.push(
        `Heap ${sizing.name}${sizing.nodeOptions ? ` (\`NODE_OPTIONS=${sizing.nodeOptions}\`)` : ''}:`,
        '',
        '| phase | RSS at rest MiB | peak RSS MiB (sampled / VmHWM) | legit sent | answered | failed | p50 ms | p99 ms | max ms | webhook warn lines | what the attack got |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
        ...phases.map(
          (p) =>
            `| ${p.name} | ${fmt(p.baseline)} | ${fmt(p.peakSampled)} / ${fmt(p.peakKernel)} | ${p.legit.sent} | ${p.legit.answered} | ${p.legit.failed}${p.legit.failed > 0 ? ` (${describeAnswers(p.legit.failures)})` : ''} | ` +
            `${fmt(p.legit.p50)} | ${fmt(p.legit.p99)} | ${fmt(p.legit.max)} | ${p.warnLines} | ${p.detail}${p.exit ? `; **the webhook ${p.exit}**` : ''} |`,
        ),
        '',
      );
    }

    const { maxDepth, maxContainers, maxMembers } = JSON_SHAPE_LIMITS;
    const lines = [
      '## Webhook under hostile load',
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}; ` +
        `the real webhook process (${bin === zkleaderBin ? 'bin/zkleader' : bin}, default flags), a fresh one per phase; the attack in a worker thread and the legit client in the main thread of the benchmark process, on the same cores. ` +
        "RSS from /proc/PID/status: VmRSS sampled every 20 ms, and VmHWM (the kernel's peak, reset at the start of the phase through /proc/PID/clear_refs); the RSS at rest is VmRSS after a warm-up. " +
        `In every phase a legit client sends a real review (the golden bare pod, ${review('x', legitPod).length} bytes, injected) every ${legitIntervalMs} ms, whatever the answers, over up to 4 keep-alive connections, as the API server does; ` +
        `each is answered (200 with its patch) or failed within ${legitTimeoutMs / 1000} s; latency from its send to the full answer. Each phase lasts ${phaseSeconds} s. ` +
        `(a) ${hostileConnections} clients each send a 1.5 MiB body again as soon as the last is answered, nested arrays and many empty arrays in turn; ` +
        `(a') the same with a valid review just under every shape limit (depth ${maxDepth}, ${maxContainers.toLocaleString('en')} objects and arrays, ${maxMembers.toLocaleString('en')} members: one-key objects with distinct keys, empty arrays, a deep array, the rest short distinct strings), the costliest body the limits admit; ` +
        `(b) ${idleConnections.toLocaleString('en')} TCP connections that never send a ClientHello, each opened again as soon as the webhook closes it (a connection flood: the webhook accepts and evicts thousands a second). ` +
        '`npm run bench:webhook-hostile` (bench/webhookHostile.ts) prints this section.',
      '',
      ...tables,
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    releaseLoopbackPorts(ports);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench:webhook-hostile: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
} else {
  void runAttack(workerData as Attack);
}
