import { memoryUsage, cpuUsage } from 'node:process';

/**
 * Counters and gauges in Prometheus' text exposition format (version 0.0.4), for the
 * sidecar's /metrics. prom-client would cost the sidecar about 12 MiB of memory
 * (bench/sidecarMemory.ts) for the few series it has; the webhook keeps prom-client.
 */

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels<L extends string> = Readonly<Record<L, string>>;

/** `\` and newlines in HELP; also `"` in label values (the format's escapes). */
const escapeHelp = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** One metric family: its samples by label values, in the order they were first set. */
abstract class Metric<L extends string> {
  abstract readonly type: 'counter' | 'gauge';
  private readonly samples = new Map<string, { labels: Labels<L> | null; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[] = [],
  ) {
    if (!metricName.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const label of labelNames) if (!labelName.test(label) || label.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(label)}`);
  }

  protected update(labels: Labels<L> | undefined, change: (value: number) => number): void {
    const key = this.labelNames.map((l) => labels?.[l] ?? '').join('\u0000');
    const sample = this.samples.get(key);
    if (sample) sample.value = change(sample.value);
    else this.samples.set(key, { labels: labels ?? null, value: change(0) });
  }

  /** HELP, TYPE and the samples; a family without labels that was never set shows 0. */
  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    if (this.labelNames.length === 0 && this.samples.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.samples.values()) {
      const pairs = labels ? this.labelNames.map((l) => `${l}="${escapeLabel(labels[l])}"`).join(',') : '';
      lines.push(`${this.name}${pairs ? `{${pairs}}` : ''} ${formatValue(value)}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

export class Counter<L extends string = never> extends Metric<L> {
  readonly type = 'counter';

  inc(labels?: Labels<L>, by = 1): void {
    if (!(by >= 0)) throw new Error(`a counter only goes up (${this.name} by ${by})`);
    this.update(labels, (v) => v + by);
  }
}

export class Gauge<L extends string = never> extends Metric<L> {
  readonly type = 'gauge';

  set(labels: Labels<L> | undefined, value: number): void {
    this.update(labels, () => value);
  }
}

/** The metric families of one /metrics page, rendered in the order they were added. */
export class MetricRegistry {
  readonly contentType = PROMETHEUS_CONTENT_TYPE;
  private readonly families: Metric<string>[] = [];
  private readonly collectors: (() => Promise<void> | void)[] = [];

  add<M extends Metric<string>>(metric: M): M {
    if (this.families.some((f) => f.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.families.push(metric);
    return metric;
  }

  /** Runs before every rendering (to read values that are sampled, not counted). */
  onCollect(collect: () => Promise<void> | void): void {
    this.collectors.push(collect);
  }

  async metrics(): Promise<string> {
    for (const collect of this.collectors) await collect();
    return this.families.map((f) => f.render()).join('');
  }
}

/**
 * The process metrics prom-client's collectDefaultMetrics() gave the sidecar that matter
 * for it, under the same names: CPU, resident memory, heap, start time, event-loop lag.
 */
export function addProcessMetrics(registry: MetricRegistry): void {
  const cpuUser = registry.add(new Counter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.'));
  const cpuSystem = registry.add(new Counter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.'));
  const cpuTotal = registry.add(new Counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.'));
  const startTime = registry.add(new Gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.'));
  const resident = registry.add(new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes.'));
  const heapTotal = registry.add(new Gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.'));
  const heapUsed = registry.add(new Gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.'));
  const external = registry.add(new Gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.'));
  const lag = registry.add(new Gauge('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds.'));
  const version = registry.add(new Gauge<'version' | 'major' | 'minor' | 'patch'>('nodejs_version_info', 'Node.js version info.', ['version', 'major', 'minor', 'patch']));
  const [major = '', minor = '', patch = ''] = process.versions.node.split('.');
  version.set({ version: process.version, major, minor, patch }, 1);
  startTime.set(undefined, Math.round(Date.now() / 1000 - process.uptime()));
  let lastCpu = { user: 0, system: 0 };
  registry.onCollect(async () => {
    const cpu = cpuUsage();
    cpuUser.inc(undefined, (cpu.user - lastCpu.user) / 1e6);
    cpuSystem.inc(undefined, (cpu.system - lastCpu.system) / 1e6);
    cpuTotal.inc(undefined, (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1e6);
    lastCpu = cpu;
    const memory = memoryUsage();
    resident.set(undefined, memory.rss);
    heapTotal.set(undefined, memory.heapTotal);
    heapUsed.set(undefined, memory.heapUsed);
    external.set(undefined, memory.external);
    // As prom-client measures it: how long a macrotask waits for its turn.
    const start = process.hrtime.bigint();
    await new Promise((resolve) => setImmediate(resolve));
    lag.set(undefined, Number(process.hrtime.bigint() - start) / 1e9);
  });
}
