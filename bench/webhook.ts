// Webhook benchmark (issues 4 and 15): admissions per second and p50/p99 latency over HTTPS
// keep-alive at 64 connections for a realistic three-container pod, against two baseline
// express HTTPS servers in the same run (bench/webhookBaseline.ts: parse the body, then answer
// a constant allow, or a constant patch: the webhook's own answer to this review, byte for
// byte, so the same size); then latency at a fixed, evenly paced 1,000 requests per second.
// Every server runs as its own process (the webhook is the real `bin/zkleader webhook`),
// autocannon in this one.
// Run: npm run bench:webhook. Prints a Markdown section for bench/RESULTS.md.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon, { type Result } from 'autocannon';
import { releaseLoopbackPorts, reserveLoopbackPorts } from '../test/support/loopbackPorts.js';
import { repoRoot, zkleaderBin } from '../test/support/repoRoot.js';
import type { pacedLoad, PacedResult } from './pacedLoad.js';
import { writeWebhookFiles } from './webhookFiles.js';

const durationS = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const connections = 64;
/** The fixed-rate phase is repeated: one 10 s run's p99 is 100 requests, a single GC or scheduling stall. */
const pacedRounds = Number(process.env.PACED_ROUNDS ?? 5);

/** An app with a log shipper and a metrics exporter, the way pods look in a cluster. */
const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    generateName: 'orders-7c9f5d-',
    namespace: 'shop',
    labels: { app: 'orders', 'app.kubernetes.io/name': 'orders', 'pod-template-hash': '7c9f5d' },
    annotations: { 'zkleader.io/inject': 'true', 'zkleader.io/containers': 'orders', 'prometheus.io/scrape': 'true' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'orders-7c9f5d', uid: 'b3c1e6a2-1111-4d2a-9a6e-0c1d2e3f4a5b', controller: true }],
  },
  spec: {
    serviceAccountName: 'orders',
    containers: [
      {
        name: 'orders',
        image: 'registry.example/orders:1.4.2',
        ports: [{ name: 'http', containerPort: 8080 }],
        env: [
          { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'orders-db', key: 'url' } } },
          { name: 'LOG_LEVEL', value: 'info' },
        ],
        resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
        readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
        volumeMounts: [{ name: 'config', mountPath: '/etc/orders' }, { name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
      },
      {
        name: 'log-shipper',
        image: 'registry.example/fluent-bit:3.1',
        args: ['--config', '/fluent-bit/etc/fluent-bit.conf'],
        resources: { requests: { cpu: '20m', memory: '32Mi' }, limits: { memory: '64Mi' } },
        volumeMounts: [{ name: 'logs', mountPath: '/var/log/orders' }],
      },
      {
        name: 'metrics',
        image: 'registry.example/exporter:0.9',
        ports: [{ name: 'metrics', containerPort: 9100 }],
        resources: { requests: { cpu: '10m', memory: '16Mi' } },
      },
    ],
    volumes: [
      { name: 'config', configMap: { name: 'orders' } },
      { name: 'logs', emptyDir: {} },
      { name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } },
    ],
  },
};

const body = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    operation: 'CREATE',
    namespace: 'shop',
    userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
    object: pod,
  },
});

function post(port: number, ca: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function waitAnswering(port: number, ca: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const { status, text } = await post(port, ca);
      if (status === 200) return text;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`nothing answers POST /mutate on 127.0.0.1:${port}`);
    await sleep(100);
  }
}

/** utime + stime of a process in milliseconds (clock ticks are 10 ms on Linux). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function withServer<T>(command: string, args: string[], port: number, ca: string, use: (firstAnswer: string, pid: number) => Promise<T>): Promise<T> {
  const child: ChildProcess = spawn(command, args, { stdio: 'ignore', cwd: repoRoot, env: { ...process.env, ZKLEADER_LOG_LEVEL: process.env.ZKLEADER_LOG_LEVEL ?? 'info' } });
  try {
    return await use(await waitAnswering(port, ca), child.pid as number);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  }
}

function load(port: number, opts: { seconds: number }): Promise<Result> {
  return autocannon({
    url: `https://127.0.0.1:${port}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: opts.seconds,
  });
}

function check(name: string, result: Result): Result {
  if (result.errors > 0 || result.non2xx > 0 || result.timeouts > 0) {
    throw new Error(`${name}: ${result.errors} errors, ${result.non2xx} non-2xx, ${result.timeouts} timeouts`);
  }
  return result;
}

interface Measured {
  saturated: Result[];
  /** Server CPU time per request at saturation, in microseconds. */
  cpuUsPerRequest: number;
  /** The round with the median p99. */
  fixedRate: PacedResult;
  paced: PacedResult[];
}

async function measure(name: string, port: number, pid: number): Promise<Measured> {
  await load(port, { seconds: 3 }); // warm-up: JIT, TLS session set-up
  const saturated: Result[] = [];
  const cpuBefore = cpuMs(pid);
  for (let i = 0; i < rounds; i++) saturated.push(check(name, await load(port, { seconds: durationS })));
  const requests = saturated.reduce((n, r) => n + r.requests.total, 0);
  const cpuUsPerRequest = ((cpuMs(pid) - cpuBefore) * 1000) / requests;
  const paced = await pacedInChild({ port, path: '/mutate', body, ratePerSecond: 1000, seconds: durationS, connections }, pacedRounds);
  for (const run of paced) if (run.failed > 0) throw new Error(`${name}: ${run.failed} failed requests at 1,000 req/s`);
  // The round with the median p99 stands for the server; every round's p99 is printed too.
  const byP99 = [...paced].sort((a, b) => a.p99 - b.p99);
  return { saturated, cpuUsPerRequest, fixedRate: byP99[Math.floor(byP99.length / 2)] as PacedResult, paced };
}

/** The fixed-rate rounds, from a fresh process (bench/pacedClient.ts says why). */
function pacedInChild(options: Parameters<typeof pacedLoad>[0], roundsToRun: number): Promise<PacedResult[]> {
  return new Promise((resolve, reject) => {
    const child = fork(join(import.meta.dirname, 'pacedClient.js'), [JSON.stringify(options), String(roundsToRun)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let results: PacedResult[] | null = null;
    child.once('message', (message) => (results = message as PacedResult[]));
    child.once('error', reject);
    child.once('exit', (code) => (results ? resolve(results) : reject(new Error(`the paced client exited with ${code} and no results`))));
  });
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const fmt = (n: number, digits = 1) => n.toFixed(digits);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'zkleader-bench-webhook-'));
  try {
    const { ca, certFile, keyFile, configFile } = await writeWebhookFiles(dir);
    let allowBytes = 0;
    const ports = await reserveLoopbackPorts(4);
    const [basePort = 0, patchPort = 0, hookPort = 0, metricsPort = 0] = ports;
    const webhookArgs = ['webhook', '--drain', '0', '--listen', `127.0.0.1:${hookPort}`, '--metrics-listen', `127.0.0.1:${metricsPort}`, '--tls-cert', certFile, '--tls-key', keyFile, '--config', configFile];
    const baselineJs = join(import.meta.dirname, 'webhookBaseline.js');

    // The webhook's answer to the benchmark's review, for the constant-patch baseline to send.
    const realAnswer = await withServer(zkleaderBin, webhookArgs, hookPort, ca.certPem, async (answer) => answer);
    if (!realAnswer.includes('"patchType":"JSONPatch"')) throw new Error(`the webhook did not inject the benchmark pod: ${realAnswer}`);
    const answerFile = join(dir, 'answer.json');
    writeFileSync(answerFile, realAnswer);

    const baseline = await withServer(process.execPath, [baselineJs, String(basePort), certFile, keyFile], basePort, ca.certPem, (answer, pid) => {
      allowBytes = Buffer.byteLength(answer);
      return measure('baseline (allow)', basePort, pid);
    });
    const patchBaseline = await withServer(process.execPath, [baselineJs, String(patchPort), certFile, keyFile, answerFile], patchPort, ca.certPem, async (answer, pid) => {
      if (answer !== realAnswer) throw new Error(`the constant-patch baseline does not answer what the webhook answers:\n${answer}\n${realAnswer}`);
      return measure('baseline (patch)', patchPort, pid);
    });
    const webhook = await withServer(zkleaderBin, webhookArgs, hookPort, ca.certPem, async (answer, pid) => {
      if (answer !== realAnswer) throw new Error(`the webhook's answer changed between two identical reviews:\n${answer}\n${realAnswer}`);
      return measure('webhook', hookPort, pid);
    });

    const row = (name: string, m: Measured) =>
      `| ${name} | ${fmt(mean(m.saturated.map((r) => r.requests.average)), 0)} | ${fmt(mean(m.saturated.map((r) => r.latency.p50)))} | ${fmt(mean(m.saturated.map((r) => r.latency.p99)))} | ` +
      `${fmt(m.cpuUsPerRequest, 0)} | ${fmt(m.fixedRate.rate, 0)} | ${fmt(m.fixedRate.p50, 2)} | ${fmt(m.fixedRate.p99, 2)} |`;
    const throughput = (m: Measured) => mean(m.saturated.map((r) => r.requests.average));
    const ratio = throughput(webhook) / throughput(baseline);
    const cpuRatio = baseline.cpuUsPerRequest / webhook.cpuUsPerRequest;
    const patchRatio = throughput(webhook) / throughput(patchBaseline);
    const patchCpuRatio = patchBaseline.cpuUsPerRequest / webhook.cpuUsPerRequest;
    const p99Target = 5;
    const rounds99 = (m: Measured) => m.paced.map((r) => fmt(r.p99, 2)).join(', ');
    const lines = [
      '## Webhook',
      '',
      `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}; ` +
        `autocannon in the benchmark process, each server in its own process; ${connections} HTTPS keep-alive connections; ` +
        `${rounds} rounds of ${durationS} s at saturation with autocannon (averaged), then ${pacedRounds} rounds of ${durationS} s at a fixed 1,000 requests/s, evenly paced (bench/pacedLoad.ts, from a fresh process: bench/pacedClient.ts; latency from each request's due time; the table shows the round with the median p99). ` +
        `The review carries a three-container pod (${body.length} bytes) into which the webhook injects the sidecar (a JSON patch of the sidecar, volume, mount, labels and status; its answer is ${Buffer.byteLength(realAnswer)} bytes). ` +
        `The two baselines are express over HTTPS with the same certificate, parsing the body with express.json and answering with res.json (bench/webhookBaseline.ts): ` +
        `one a constant allow (${allowBytes} bytes), the other a constant patch, the webhook's own answer to this review with the request's uid put in (checked byte for byte: ${Buffer.byteLength(realAnswer)} bytes), ` +
        'so that what the webhook costs beyond it is the admission itself and not writing its answer. `npm run bench:webhook` (bench/webhook.ts) prints this section.',
      '',
      '| server | req/s at 64 conn. | p50 ms | p99 ms | server CPU µs/req | req/s fixed rate | p50 ms | p99 ms |',
      '|---|---|---|---|---|---|---|---|',
      row('baseline (parse + constant allow)', baseline),
      row('baseline (parse + constant patch, same size)', patchBaseline),
      row('zkleader webhook (inject + patch)', webhook),
      '',
      `Throughput ratio webhook / constant-allow baseline: ${fmt(ratio, 2)} (target ≥ 0.8 ${ratio >= 0.8 ? '✔' : '✘'}); ` +
        `webhook / constant-patch baseline: ${fmt(patchRatio, 2)}. ` +
        `Server CPU per request baseline / webhook (the capacity ratio when the server has a core to itself): constant allow ${fmt(cpuRatio, 2)}, constant patch ${fmt(patchCpuRatio, 2)}. ` +
        `Webhook p99 at 1,000 req/s, median of ${pacedRounds} rounds: ${fmt(webhook.fixedRate.p99, 2)} ms (target < ${p99Target} ms ${webhook.fixedRate.p99 < p99Target ? '✔' : '✘'}). ` +
        `p99 of every round, ms: constant allow ${rounds99(baseline)}; constant patch ${rounds99(patchBaseline)}; webhook ${rounds99(webhook)}. ` +
        'No errors, timeouts or non-2xx answers in any run.',
      '',
    ];
    process.stdout.write(lines.join('\n'));
    releaseLoopbackPorts(ports);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:webhook: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
