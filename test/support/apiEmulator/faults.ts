import { forbidden, internalError, serviceUnavailable, tooManyRequests, conflict, type ApiError, type Target } from './status.js';

export type Verb = 'get' | 'list' | 'create' | 'patch' | 'delete' | 'update';
export type FaultResource = 'pods' | 'events' | 'secrets' | 'mutatingwebhookconfigurations';

/** A switch that makes matching requests fail as a real apiserver would fail them. */
export interface Fault {
  verb: Verb;
  resource: FaultResource;
  status: 403 | 409 | 429 | 500 | 503;
  /** How many requests fail; default: every one until the fault is removed. */
  times?: number;
  namespace?: string;
  name?: string;
  /** Wait this long before answering, to look like a slow apiserver. */
  delayMs?: number;
}

export interface FaultRequest {
  verb: Verb;
  resource: string;
  group: string;
  namespace?: string;
  name?: string;
  user: string;
}

interface ArmedFault {
  fault: Fault;
  remaining: number;
}

/** The faults switched on by a test, consumed by requests in the order they were added. */
export class FaultTable {
  private armed: ArmedFault[] = [];

  add(fault: Fault): () => void {
    const entry = { fault, remaining: fault.times ?? Infinity };
    this.armed.push(entry);
    return () => {
      this.armed = this.armed.filter((e) => e !== entry);
    };
  }

  clear(): void {
    this.armed = [];
  }

  /** The failure for this request, if a fault matches; counts the use. */
  take(req: FaultRequest): { error: ApiError; delayMs: number } | undefined {
    const entry = this.armed.find(
      (e) =>
        e.fault.verb === req.verb &&
        e.fault.resource === req.resource &&
        (e.fault.namespace === undefined || e.fault.namespace === req.namespace) &&
        (e.fault.name === undefined || e.fault.name === req.name),
    );
    if (!entry) return undefined;
    entry.remaining -= 1;
    if (entry.remaining <= 0) this.armed = this.armed.filter((e) => e !== entry);
    return { error: failureFor(entry.fault.status, req), delayMs: entry.fault.delayMs ?? 0 };
  }
}

function failureFor(status: Fault['status'], req: FaultRequest): ApiError {
  const target: Target = { resource: req.resource, group: req.group };
  if (req.name !== undefined) target.name = req.name;
  switch (status) {
    case 403:
      return forbidden(req.user, req.verb, target, req.namespace);
    case 409:
      return conflict(target);
    case 429:
      return tooManyRequests();
    case 500:
      return internalError('injected fault');
    case 503:
      return serviceUnavailable();
  }
}
