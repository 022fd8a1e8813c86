import type { V1Pod } from '@kubernetes/client-node';

/**
 * Checks that a value decoded from JSON or YAML has the parts of a Pod the injector
 * reads, with the right types, so that the rest of the code can trust V1Pod. It is
 * not the API server's validation: fields the injector does not read are left alone.
 */
export function readPod(value: unknown, where = 'pod'): V1Pod {
  const pod = record(value, where);
  if (pod.metadata !== undefined) {
    const metadata = record(pod.metadata, `${where}.metadata`);
    stringMap(metadata.labels, `${where}.metadata.labels`);
    stringMap(metadata.annotations, `${where}.metadata.annotations`);
  }
  const spec = record(pod.spec, `${where}.spec`);
  if (spec.automountServiceAccountToken !== undefined && typeof spec.automountServiceAccountToken !== 'boolean') {
    throw new Error(`${where}.spec.automountServiceAccountToken: expected a boolean`);
  }
  containers(spec.containers, `${where}.spec.containers`, true);
  containers(spec.initContainers, `${where}.spec.initContainers`, false);
  named(spec.volumes, `${where}.spec.volumes`);
  return pod as V1Pod;
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: expected an object`);
  return value as Record<string, unknown>;
}

function stringMap(value: unknown, where: string): void {
  if (value === undefined || value === null) return;
  for (const [key, entry] of Object.entries(record(value, where))) {
    if (typeof entry !== 'string') throw new Error(`${where}[${JSON.stringify(key)}]: expected a string`);
  }
}

function list(value: unknown, where: string, required: boolean): unknown[] {
  // Go encodes an empty list without omitempty as null.
  if ((value === undefined || value === null) && !required) return [];
  if (!Array.isArray(value)) throw new Error(`${where}: expected a list`);
  return value;
}

function named(value: unknown, where: string): Record<string, unknown>[] {
  return list(value, where, false).map((item, i) => {
    const entry = record(item, `${where}[${i}]`);
    if (typeof entry.name !== 'string' || entry.name === '') throw new Error(`${where}[${i}].name: expected a non-empty string`);
    return entry;
  });
}

function containers(value: unknown, where: string, required: boolean): void {
  if (required) list(value, where, true);
  named(value, where).forEach((container, i) => {
    const at = `${where}[${i}]`;
    for (const field of ['args', 'command'] as const) {
      const entries = container[field];
      if (entries !== undefined && (!Array.isArray(entries) || entries.some((e) => typeof e !== 'string'))) {
        throw new Error(`${at}.${field}: expected a list of strings`);
      }
    }
    list(container.volumeMounts, `${at}.volumeMounts`, false).forEach((mount, j) => {
      const m = record(mount, `${at}.volumeMounts[${j}]`);
      if (typeof m.name !== 'string' || typeof m.mountPath !== 'string') throw new Error(`${at}.volumeMounts[${j}]: expected name and mountPath strings`);
    });
    list(container.ports, `${at}.ports`, false).forEach((port, j) => record(port, `${at}.ports[${j}]`));
  });
}
