import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { isDns1123Label, parseZooKeeperConnectString } from '../cli/valueSyntax.js';
import { parseSidecarMode, type SidecarMode } from './annotations.js';

export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/**
 * How sidecars authenticate to ZooKeeper: `none` (open mode, no credential) or
 * `required` (each sidecar gets its namespace's tenant credential, the Secret
 * zkleader-zookeeper that `zkleader tenant add` writes).
 */
export type ZooKeeperAuth = 'none' | 'required';

export function parseZooKeeperAuth(value: unknown): ZooKeeperAuth {
  if (value === 'none' || value === 'required') return value;
  throw new Error(`expected "none" or "required", got ${JSON.stringify(value)}`);
}

export interface SidecarResources {
  requests: Record<string, string>;
  limits: Record<string, string>;
}

/** What the webhook operator decides for every pod; annotations override zookeeper and sidecarMode. */
export interface InjectorConfig {
  /** The injector's version, recorded in the status annotation. */
  readonly version: string;
  readonly image: string;
  readonly imagePullPolicy: ImagePullPolicy;
  /** The default connect string; undefined: every pod must name one in zkleader.io/zookeeper. */
  readonly zookeeper: string | undefined;
  readonly sidecarMode: SidecarMode;
  readonly resources: SidecarResources;
  readonly zookeeperAuth: ZooKeeperAuth;
  /**
   * The cluster this webhook serves (DESIGN.md "One election across clusters"): given to
   * every sidecar as --cluster. Empty (the default): no cluster, the sidecar gets nothing.
   */
  readonly cluster: string;
}

/**
 * `sidecarImage` is the webhook's own image when its Deployment says it
 * (--sidecar-image); a config's `image` still wins over it.
 */
export function defaultInjectorConfig(version: string, sidecarImage?: string): InjectorConfig {
  return {
    version,
    image: sidecarImage ?? `ghcr.io/zkleader/zkleader:v${version}`,
    imagePullPolicy: 'IfNotPresent',
    zookeeper: undefined,
    sidecarMode: 'native',
    // Measured (bench/sidecarMemory.ts): idle RSS with pod labelling on 58 MiB with three
    // members, 63 MiB with 1,000; the peak under faults (ZooKeeper down, the API answering 503,
    // a 1 MiB config) 70 MiB. The limit leaves a third above that, and room for the config
    // files, which are written to a Memory volume charged to this container (2 MiB each).
    resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '96Mi' } },
    zookeeperAuth: 'none',
    cluster: '',
  };
}

const quantityPattern = /^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$/;
const configFields = ['image', 'imagePullPolicy', 'zookeeper', 'sidecarMode', 'resources', 'zookeeperAuth', 'cluster'];

/** The `cluster` setting: a DNS-1123 label, or "" for none. */
export function parseClusterSetting(value: unknown): string {
  if (typeof value === 'string' && (value === '' || isDns1123Label(value))) return value;
  throw new Error(
    `expected a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit) naming this cluster, or "" for none; got ${JSON.stringify(value)}`,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new Error(`${field}: expected a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

function parseQuantities(value: unknown, field: string, base: Record<string, string>): Record<string, string> {
  if (value === undefined) return base;
  if (!isRecord(value)) throw new Error(`${field}: expected a map such as {cpu: 10m, memory: 32Mi}`);
  const result = { ...base };
  for (const [name, quantity] of Object.entries(value)) {
    if (name !== 'cpu' && name !== 'memory') throw new Error(`${field}.${name}: unknown resource; expected cpu or memory`);
    const text = typeof quantity === 'number' ? String(quantity) : quantity;
    if (typeof text !== 'string' || !quantityPattern.test(text)) {
      throw new Error(`${field}.${name}: expected a Kubernetes quantity such as "10m" or "64Mi", got ${JSON.stringify(quantity)}`);
    }
    result[name] = text;
  }
  return result;
}

/**
 * Validates a parsed configuration document over the defaults. Every error names
 * the field at fault and the expected form; unknown fields are errors (a typo
 * must not be silently ignored).
 */
export function parseInjectorConfig(document: unknown, version: string, sidecarImage?: string): InjectorConfig {
  const defaults = defaultInjectorConfig(version, sidecarImage);
  if (document === null || document === undefined) return defaults;
  if (!isRecord(document)) throw new Error(`expected a map with the fields ${configFields.join(', ')}`);
  for (const key of Object.keys(document)) {
    if (!configFields.includes(key)) throw new Error(`${key}: unknown field; expected one of ${configFields.join(', ')}`);
  }
  const { image, imagePullPolicy, zookeeper, sidecarMode, resources, zookeeperAuth, cluster } = document;
  if (imagePullPolicy !== undefined && imagePullPolicy !== 'Always' && imagePullPolicy !== 'IfNotPresent' && imagePullPolicy !== 'Never') {
    throw new Error(`imagePullPolicy: expected Always, IfNotPresent or Never, got ${JSON.stringify(imagePullPolicy)}`);
  }
  const withField = <T>(field: string, parse: () => T): T => {
    try {
      return parse();
    } catch (err) {
      throw new Error(`${field}: ${(err as Error).message}`, { cause: err });
    }
  };
  if (resources !== undefined && !isRecord(resources)) throw new Error('resources: expected a map with requests and limits');
  for (const key of Object.keys(resources ?? {})) {
    if (key !== 'requests' && key !== 'limits') throw new Error(`resources.${key}: unknown field; expected requests or limits`);
  }
  return {
    version,
    image: image === undefined ? defaults.image : requireString(image, 'image'),
    imagePullPolicy: imagePullPolicy ?? defaults.imagePullPolicy,
    zookeeper: zookeeper === undefined ? undefined : withField('zookeeper', () => parseZooKeeperConnectString(requireString(zookeeper, 'value'))),
    sidecarMode: sidecarMode === undefined ? defaults.sidecarMode : withField('sidecarMode', () => parseSidecarMode(String(sidecarMode))),
    resources: {
      requests: parseQuantities(resources?.requests, 'resources.requests', defaults.resources.requests),
      limits: parseQuantities(resources?.limits, 'resources.limits', defaults.resources.limits),
    },
    zookeeperAuth: zookeeperAuth === undefined ? defaults.zookeeperAuth : withField('zookeeperAuth', () => parseZooKeeperAuth(zookeeperAuth)),
    cluster: cluster === undefined ? defaults.cluster : withField('cluster', () => parseClusterSetting(cluster)),
  };
}

/** Reads `--config FILE` (YAML or JSON); no file means the defaults. Errors name the file and the field. */
export function loadInjectorConfig(path: string | undefined, version: string, sidecarImage?: string): InjectorConfig {
  if (path === undefined) return defaultInjectorConfig(version, sidecarImage);
  let document: unknown;
  try {
    document = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`config ${path}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  try {
    return parseInjectorConfig(document, version, sidecarImage);
  } catch (err) {
    throw new Error(`config ${path}: ${(err as Error).message}`, { cause: err });
  }
}
