import { describe, expect, it } from '@jest/globals';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { Counter as PromCounter, Gauge as PromGauge, Registry } from 'prom-client';
import { Counter, Gauge, MetricRegistry, PROMETHEUS_CONTENT_TYPE } from '../../../sidecar/prometheusText.js';
import { SidecarMetrics } from '../../../sidecar/sidecarMetrics.js';
import type { ElectionSnapshot } from '../../../zookeeper/electionSnapshot.js';

// The sidecar's /metrics without prom-client (sidecar/prometheusText.ts), read back with a
// real parser of Prometheus' text format (a port of the Python client's), and compared
// with what prom-client makes of the same updates.

const byName = (families: ParsedFamily[]) => new Map(families.map((f) => [f.name, f]));
const tricky = 'C:\\DIR\\"FILE"\nnext line';

describe('the sidecar metrics page', () => {
  it('parses as Prometheus text, with every zkleader series, the process metrics and their types', async () => {
    const metrics = new SidecarMetrics();
    metrics.observe({ isLeader: true, state: 'leader' } as ElectionSnapshot);
    metrics.setConnection('connected');
    metrics.labelPatchError('429');
    metrics.labelPatchError('429');
    metrics.eventError('timeout');
    metrics.candidateTampered(false);
    metrics.zookeeperAccessDenied();
    metrics.configUpdated('app', 3);
    const text = await metrics.registry.metrics();
    expect(metrics.registry.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const families = byName(parsePrometheusTextFormat(text));
    const sample = (name: string, labels?: Record<string, string>) => families.get(name)?.metrics.find((m) => JSON.stringify(m.labels ?? {}) === JSON.stringify(labels ?? {}))?.value;
    expect(sample('zkleader_is_leader')).toBe('1');
    expect(families.get('zkleader_is_leader')?.type).toBe('GAUGE');
    expect(sample('zkleader_leadership_transitions_total', { to: 'leader' })).toBe('1');
    expect(families.get('zkleader_leadership_transitions_total')?.type).toBe('COUNTER');
    expect(sample('zkleader_zookeeper_connection_state', { state: 'connected' })).toBe('1');
    expect(sample('zkleader_zookeeper_connection_state', { state: 'connecting' })).toBe('0');
    expect(sample('zkleader_label_patch_errors_total', { status: '429' })).toBe('2');
    expect(sample('zkleader_event_errors_total', { status: 'timeout' })).toBe('1');
    expect(sample('zkleader_candidate_tampered_total', { own: 'false' })).toBe('1');
    expect(sample('zkleader_zookeeper_access_denied_total')).toBe('1');
    expect(sample('zkleader_config_version', { config: 'app' })).toBe('3');
    expect(sample('zkleader_config_updates_total', { config: 'app' })).toBe('1');
    expect(families.get('zkleader_candidate_tampered_total')?.help).toBe('Candidate nodes found changed after their creation (data version not 0), own="true" for this member\'s own node');
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(Number(sample(name))).toBeGreaterThanOrEqual(0);
    }
    expect(Number(sample('process_resident_memory_bytes'))).toBeGreaterThan(1024 * 1024);
    expect(families.get('nodejs_version_info')?.metrics[0]?.labels?.version).toBe(process.version);
  });

  it('escapes help and label values exactly as prom-client does, and a real parser reads both alike', async () => {
    const ours = new MetricRegistry();
    const theirs = new Registry();
    const help = 'a help text with a \\ backslash\nand a second line';
    const c = ours.add(new Counter<'path' | 'kind'>('demo_total', help, ['path', 'kind']));
    const g = ours.add(new Gauge('demo_gauge', 'a gauge'));
    const pc = new PromCounter({ name: 'demo_total', help, labelNames: ['path', 'kind'], registers: [theirs] });
    const pg = new PromGauge({ name: 'demo_gauge', help: 'a gauge', registers: [theirs] });
    for (const [labels, by] of [[{ path: tricky, kind: 'a' }, 1], [{ path: '', kind: 'b' }, 2.5], [{ path: tricky, kind: 'a' }, 1e-7]] as const) {
      c.inc(labels, by);
      pc.inc(labels, by);
    }
    g.set(undefined, -Infinity);
    pg.set(-Infinity);
    const text = await ours.metrics();
    expect(parsePrometheusTextFormat(text)).toEqual(parsePrometheusTextFormat(await theirs.metrics()));
    expect(text).toBe(
      [
        '# HELP demo_total a help text with a \\\\ backslash\\nand a second line',
        '# TYPE demo_total counter',
        'demo_total{path="C:\\\\DIR\\\\\\"FILE\\"\\nnext line",kind="a"} 1.0000001',
        'demo_total{path="",kind="b"} 2.5',
        '# HELP demo_gauge a gauge',
        '# TYPE demo_gauge gauge',
        'demo_gauge -Inf',
        '',
      ].join('\n'),
    );
    expect(parsePrometheusTextFormat(text)[0]?.metrics[0]?.labels?.path).toBe(tricky);
    expect(PROMETHEUS_CONTENT_TYPE).toBe(theirs.contentType);
  });

  it('refuses what the format cannot carry: bad names, a counter going down', () => {
    expect(() => new Counter('bad-name', 'x')).toThrow(/invalid metric name/);
    expect(() => new Gauge<'__reserved'>('ok', 'x', ['__reserved'])).toThrow(/invalid label name/);
    expect(() => new Counter('ok_total', 'x').inc(undefined, -1)).toThrow(/only goes up/);
    const registry = new MetricRegistry();
    registry.add(new Gauge('twice', 'x'));
    expect(() => registry.add(new Gauge('twice', 'x'))).toThrow(/registered twice/);
  });
});
