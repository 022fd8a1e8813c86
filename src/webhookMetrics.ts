import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type MetricOutcome = 'injected' | 'skipped' | 'refused' | 'error';

/** The webhook's Prometheus metrics, on a registry of its own (several servers can live in one test process). */
export class WebhookMetrics {
  readonly registry = new Registry();
  private readonly admissions = new Counter({
    name: 'zkleader_webhook_admissions_total',
    help: 'Admission reviews answered, by outcome; skipped ones by reason',
    labelNames: ['outcome', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'zkleader_webhook_admission_duration_seconds',
    help: 'Time from the request body read to the response written, by outcome',
    labelNames: ['outcome'] as const,
    // The API server gives a webhook at most 10 s; injection itself takes well under a millisecond.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5, 10],
    registers: [this.registry],
  });
  private readonly reloads = new Counter({
    name: 'zkleader_webhook_certificate_reloads_total',
    help: 'Attempts to load a changed serving certificate, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  admission(outcome: MetricOutcome, seconds: number, reason = ''): void {
    this.admissions.inc({ outcome, reason });
    this.latency.observe({ outcome }, seconds);
  }

  certificateReload(result: 'loaded' | 'rejected'): void {
    this.reloads.inc({ result });
  }
}
