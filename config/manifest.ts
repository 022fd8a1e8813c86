import { parseAllDocuments, stringify } from 'yaml';
import { isDns1123Label } from '../cli/valueSyntax.js';
import { parseConfigKey, parseConfigName, type ConfigVersion } from '../zookeeper/configStore.js';
import { ConfigCommandError, type ConfigRef } from './subcommand.js';

/*
 * Configs as Kubernetes ConfigMaps: `config get -o yaml` prints one (kubectl apply accepts
 * it), `config import` reads them back.
 */

/** The annotation of `config get -o yaml` naming the version it shows. */
export const versionAnnotation = 'zkleader.io/config-version';

function sortedKeys(keys: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(keys).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The version as a ConfigMap manifest (keys sorted, as the API server returns them). */
export function configMapManifest(ref: ConfigRef, version: ConfigVersion): string {
  const manifest = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: ref.name, namespace: ref.namespace, annotations: { [versionAnnotation]: String(version.version) } },
    data: sortedKeys(version.keys),
  };
  return stringify(manifest, { lineWidth: 0 });
}

/** The keys as YAML (`key: value`, block scalars for several lines): the default output of `config get`. */
export function formatKeys(keys: Readonly<Record<string, string>>): string {
  return stringify(sortedKeys(keys), { lineWidth: 0 });
}

/** One ConfigMap of an import, and where in the stream it was. */
export interface ImportedConfigMap {
  readonly ref: ConfigRef;
  readonly keys: Record<string, string>;
  /** "document 2", or "document 2, item 3" inside a List. */
  readonly where: string;
  /** The version it was taken from (annotation zkleader.io/config-version of `config get -o yaml`). */
  readonly basedOn?: number;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Every ConfigMap of a multi-document YAML stream (a `kind: List` of them, as
 * `kubectl get cm -o yaml` prints several, counts too). The whole stream is checked before
 * anything is written; any other kind is refused with its document index: an import of a
 * wrong file (a Secret among the ConfigMaps, a Deployment) must not half-succeed quietly.
 */
export function parseConfigMaps(input: string, defaultNamespace: string | undefined): ImportedConfigMap[] {
  const documents = parseAllDocuments(input, { uniqueKeys: true });
  if (!Array.isArray(documents)) return [];
  const out: ImportedConfigMap[] = [];
  documents.forEach((doc, index) => {
    const at = `document ${index + 1}`;
    const error = doc.errors[0];
    if (error) throw new ConfigCommandError(`${at} is not valid YAML: ${error.message.split('\n')[0] ?? error.message}`);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    // An empty document (only comments, or after a trailing ---): kubectl skips it too.
    if (value === null || value === undefined) return;
    if (!isRecord(value)) throw new ConfigCommandError(`${at} is ${typeName(value)}, not a Kubernetes object`);
    if (value.kind === 'List' && value.apiVersion === 'v1') {
      if (!Array.isArray(value.items)) throw new ConfigCommandError(`${at} is a List without items`);
      value.items.forEach((item: unknown, i) => out.push(configMapOf(item, `${at}, item ${i + 1}`, defaultNamespace)));
      return;
    }
    out.push(configMapOf(value, at, defaultNamespace));
  });
  const seen = new Map<string, string>();
  for (const map of out) {
    const key = `${map.ref.namespace}/${map.ref.name}`;
    const earlier = seen.get(key);
    if (earlier) throw new ConfigCommandError(`${map.where}: ConfigMap ${key} is also ${earlier}; one version per config and import`);
    seen.set(key, map.where);
  }
  return out;
}

function configMapOf(value: unknown, at: string, defaultNamespace: string | undefined): ImportedConfigMap {
  if (!isRecord(value)) throw new ConfigCommandError(`${at} is ${typeName(value)}, not a Kubernetes object`);
  const kind = typeof value.kind === 'string' ? value.kind : undefined;
  if (kind !== 'ConfigMap') {
    const what = kind === undefined ? 'has no kind' : `is a ${kind}`;
    throw new ConfigCommandError(`${at} ${what}: config import reads ConfigMaps only (v1); take the other documents out of the file`);
  }
  if (value.apiVersion !== 'v1') throw new ConfigCommandError(`${at} is a ConfigMap of apiVersion ${JSON.stringify(value.apiVersion)}; expected v1`);
  const metadata = isRecord(value.metadata) ? value.metadata : {};
  const name = metadata.name;
  if (typeof name !== 'string' || name === '') throw new ConfigCommandError(`${at} is a ConfigMap without metadata.name`);
  try {
    parseConfigName(name);
  } catch (err) {
    throw new ConfigCommandError(`${at}: ${(err as Error).message}`);
  }
  const given = metadata.namespace;
  if (given !== undefined && typeof given !== 'string') throw new ConfigCommandError(`${at}: ConfigMap ${name}'s metadata.namespace is ${typeName(given)}, not a name`);
  if (given !== undefined && defaultNamespace !== undefined && given !== defaultNamespace) {
    // kubectl refuses this too: the flag and the object disagree on where it goes.
    throw new ConfigCommandError(`${at}: ConfigMap ${name} is in namespace ${given}, not ${defaultNamespace} of --namespace; leave out --namespace or fix the document`);
  }
  const namespace = given ?? defaultNamespace;
  if (namespace === undefined) throw new ConfigCommandError(`${at}: ConfigMap ${name} has no metadata.namespace; give it one, or --namespace`);
  if (!isDns1123Label(namespace)) throw new ConfigCommandError(`${at}: ConfigMap ${name}'s namespace ${JSON.stringify(namespace)} is not a namespace name (DNS-1123 label)`);
  const where = `${at} (ConfigMap ${namespace}/${name})`;
  if (value.binaryData !== undefined && value.binaryData !== null && !(isRecord(value.binaryData) && Object.keys(value.binaryData).length === 0)) {
    throw new ConfigCommandError(`${where} has binaryData: a config holds text values only; move them into data (e.g. as base64 text), or into a Secret`);
  }
  const data = value.data ?? {};
  if (!isRecord(data)) throw new ConfigCommandError(`${where}: data is ${typeName(data)}, not a mapping of keys to values`);
  const keys: Record<string, string> = {};
  for (const [key, v] of Object.entries(data)) {
    try {
      parseConfigKey(key);
    } catch (err) {
      throw new ConfigCommandError(`${where}: ${(err as Error).message}`);
    }
    // The API server refuses what is no string (`port: 8080`); quote such values.
    if (typeof v !== 'string') throw new ConfigCommandError(`${where}: data.${key} is ${typeName(v)}; ConfigMap values are strings: quote it`);
    Object.defineProperty(keys, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  if (Object.keys(keys).length === 0) throw new ConfigCommandError(`${where} has no data; a version needs at least one key`);
  const basedOn = basedOnVersion(metadata.annotations, where);
  return { ref: { namespace, name }, keys, where, ...(basedOn !== undefined && { basedOn }) };
}

/** The version named by the zkleader.io/config-version annotation, if any. */
function basedOnVersion(annotations: unknown, where: string): number | undefined {
  if (!isRecord(annotations)) return undefined;
  const raw = annotations[versionAnnotation];
  if (raw === undefined) return undefined;
  const n = typeof raw === 'string' && /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1)) {
    throw new ConfigCommandError(`${where}: annotation ${versionAnnotation} is ${JSON.stringify(raw)}, not a version number; it names the version the manifest was taken from — fix it, or remove it to write regardless of the current version`);
  }
  return n;
}
