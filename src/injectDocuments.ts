import { parseAllDocuments, stringify, type Document } from 'yaml';
import type { InjectorConfig } from './config.js';
import { inject } from './inject.js';
import { readPod } from './podShape.js';

/** Where each kind keeps the pod that the injector rewrites. */
export const podPaths: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export type InjectDocumentsResult =
  | { kind: 'injected'; output: string; warnings: string[] }
  | { kind: 'refused'; message: string };

// lineWidth 0: the status annotation's JSON stays on one line instead of being folded.
const yamlOptions = { lineWidth: 0 } as const;

function getIn(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined), value);
}

function setIn(root: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  if (path.length === 0) return value as Record<string, unknown>;
  let node = root;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[path[path.length - 1] as string] = value;
  return root;
}

function describe(index: number, object: Record<string, unknown>): string {
  const metadata = getIn(object, ['metadata']) as { name?: unknown; namespace?: unknown } | undefined;
  const name = [metadata?.namespace, metadata?.name].filter((part) => typeof part === 'string').join('/');
  return `document ${index + 1} (${String(object.kind)}${name ? ` ${name}` : ''})`;
}

function body(document: Document): string {
  return document.toString(yamlOptions).replace(/^---\n/, '');
}

/**
 * `zkleader inject`: injects every Pod and pod template of a multi-document YAML
 * stream with the same inject() as the webhook. Other kinds, and pods that do not
 * opt in, pass through unchanged and in order. The first refusal stops everything,
 * so half-injected output never reaches `kubectl apply`.
 */
export function injectDocuments(text: string, config: InjectorConfig): InjectDocumentsResult {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) return { kind: 'injected', output: '', warnings: [] };
  const outputs: string[] = [];
  const warnings: string[] = [];
  for (const [index, document] of documents.entries()) {
    const error = document.errors[0];
    if (error) return { kind: 'refused', message: `document ${index + 1}: invalid YAML: ${error.message.split('\n')[0]}` };
    const object: unknown = document.toJS();
    const path = typeof object === 'object' && object !== null ? podPaths[String((object as { kind?: unknown }).kind)] : undefined;
    if (path === undefined) {
      outputs.push(body(document));
      continue;
    }
    const where = describe(index, object as Record<string, unknown>);
    let result;
    try {
      result = inject(readPod(getIn(object, path), path.length === 0 ? 'pod' : path.join('.')), config);
    } catch (err) {
      return { kind: 'refused', message: `${where}: ${(err as Error).message}` };
    }
    warnings.push(...result.warnings.map((w) => `${where}: ${w}`));
    if (result.kind === 'refused') return { kind: 'refused', message: `${where}: ${result.message}` };
    if (result.kind === 'skipped') outputs.push(body(document));
    else outputs.push(stringify(setIn(object as Record<string, unknown>, path, result.pod), yamlOptions));
  }
  return { kind: 'injected', output: outputs.join('---\n'), warnings };
}
