import type { AclEntry } from './credentials.js';
import { childrenOrEmpty, ZooKeeperCode, ZooKeeperError, type ZooKeeperSession } from './session.js';

/*
 * The config store recipe (DESIGN.md "Configuration in ZooKeeper"):
 *
 *   <root>/<ns>/_config/<name>                    the pointer: {"version": N, "previous": P, "updatedAt": ...}
 *   <root>/<ns>/_config/<name>/v-<10-digit seq>   one immutable version each: {"keys": {...}, "message", "createdAt", "parent"}
 *
 * Version N is the node `v-<N-1>` (ZooKeeper's sequence starts at 0; versions at 1). A
 * version is written once and never changed. The pointer changes only by compare-and-set
 * on its data version: a writer that read the pointer, stored its version and then finds
 * the pointer moved by someone else fails loudly (ConfigConflictError) instead of
 * replacing the other writer's update. Knows nothing of Kubernetes or files.
 */

/** ZooKeeper refuses a packet over jute.maxbuffer (1 MiB by default); the path and header need room too. */
export const DEFAULT_MAX_VERSION_BYTES = 1024 * 1024 - 4096;
export const DEFAULT_KEEP = 20;

export interface ConfigPointer {
  /** 0: no version yet. */
  readonly version: number;
  readonly previous: number | null;
  readonly updatedAt: string | null;
}

export interface ConfigVersion {
  readonly version: number;
  readonly keys: Readonly<Record<string, string>>;
  readonly message: string;
  readonly createdAt: string;
  /** The version that was current when this one was written (0: none); a set succeeds only if it still was. */
  readonly parent: number;
}

export interface ConfigHistoryEntry {
  readonly version: number;
  readonly message: string;
  readonly createdAt: string;
  readonly parent: number;
  readonly current: boolean;
}

export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
}

/** The pointer moved between our read and our compare-and-set: our version is stored but not current. */
export class ConfigConflictError extends ConfigError {
  override readonly name = 'ConfigConflictError';
  constructor(
    readonly config: string,
    readonly stored: number,
    readonly current: number,
  ) {
    super(`config ${config} changed meanwhile (now version ${current}): version ${stored} was stored but is not current; set it again, or \`config rollback --to ${stored}\``);
  }
}

/** apply() with `basedOn`: the config's current version is not the one the change was based on. */
export class ConfigStaleError extends ConfigError {
  override readonly name = 'ConfigStaleError';
  constructor(
    readonly config: string,
    readonly basedOn: number,
    readonly current: number,
  ) {
    super(`config ${config} is at version ${current}, not ${basedOn} that this change was based on: it changed meanwhile; take the current version and make the change again, or \`config rollback --to ${basedOn}\` to make ${basedOn} current as it was`);
  }
}

function sameKeys(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

const nameSyntax = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const keySyntax = /^[-._a-zA-Z0-9]+$/;

/** A config's name: a ConfigMap name (DNS-1123 subdomain, ≤ 253). */
export function parseConfigName(raw: string): string {
  if (raw.length === 0 || raw.length > 253 || !nameSyntax.test(raw)) {
    throw new ConfigError(`config name ${JSON.stringify(raw)} must be a ConfigMap name: lower-case letters, digits, "-" and ".", at most 253 characters`);
  }
  return raw;
}

/** ConfigMap key syntax (letters, digits, "-", "_", "."; ≤ 253; not "." nor starting with ".."). */
export function isConfigKey(raw: string): boolean {
  return raw.length > 0 && raw.length <= 253 && keySyntax.test(raw) && raw !== '.' && !raw.startsWith('..');
}

/** A key: ConfigMap key syntax (letters, digits, "-", "_", "."; ≤ 253; not "." or ".."). */
export function parseConfigKey(raw: string): string {
  if (!isConfigKey(raw)) {
    throw new ConfigError(`config key ${JSON.stringify(raw)} must be letters, digits, "-", "_" or "." (at most 253 characters, not "." nor starting with "..")`);
  }
  return raw;
}

function versionNode(version: number): string {
  return `v-${String(version - 1).padStart(10, '0')}`;
}

function versionOf(node: string): number | null {
  const m = /^v-(\d{10})$/.exec(node);
  return m?.[1] ? Number(m[1]) + 1 : null;
}

/** A pointer node's data; ConfigError naming the node when it is no {"version": N} document. */
export function parsePointer(data: Buffer, path: string): ConfigPointer {
  try {
    const p = JSON.parse(data.toString('utf8') || '{"version":0}') as Partial<ConfigPointer> | null;
    if (p === null || typeof p.version !== 'number' || !Number.isInteger(p.version) || p.version < 0) throw new Error('no version');
    return { version: p.version, previous: typeof p.previous === 'number' ? p.previous : null, updatedAt: typeof p.updatedAt === 'string' ? p.updatedAt : null };
  } catch {
    throw new ConfigError(`config pointer ${path} is not a {"version": N} document`);
  }
}

export interface ConfigStoreOptions {
  /** `<root>` of DESIGN.md's layout, e.g. /zkleader. */
  readonly root: string;
  /** The ACL of every node it creates (a tenant's creator-only ACL), or open nodes. */
  readonly acl?: readonly AclEntry[];
  readonly maxVersionBytes?: number;
  readonly now?: () => Date;
}

export class ConfigStore {
  private readonly maxBytes: number;
  private readonly now: () => Date;

  constructor(
    private readonly session: ZooKeeperSession,
    private readonly options: ConfigStoreOptions,
  ) {
    this.maxBytes = options.maxVersionBytes ?? DEFAULT_MAX_VERSION_BYTES;
    this.now = options.now ?? (() => new Date());
  }

  /** `<root>/<ns>/_config/<name>` */
  pointerPath(namespace: string, name: string): string {
    return `${this.options.root}/${namespace}/_config/${parseConfigName(name)}`;
  }

  /** The pointer and its data version (for compare-and-set), or null when the config does not exist. */
  async pointer(namespace: string, name: string): Promise<{ pointer: ConfigPointer; dataVersion: number } | null> {
    const path = this.pointerPath(namespace, name);
    const node = await this.session.get(path);
    return node ? { pointer: parsePointer(node.data, path), dataVersion: node.stat.version } : null;
  }

  /**
   * Stores a new version with these keys and makes it current. Returns its number. Throws
   * ConfigConflictError when another writer moved the pointer meanwhile, ConfigError for a
   * bad key or a version over the size limit (before anything is written).
   */
  async set(namespace: string, name: string, keys: Readonly<Record<string, string>>, message = ''): Promise<number> {
    this.checkVersion(namespace, name, keys, message);
    return this.store(namespace, name, keys, message, await this.pointerOrCreate(namespace, name));
  }

  /**
   * What `config set` and `config import` run: like set(), but keys equal to the current
   * version's write nothing ({changed: false}, the current version), and with `basedOn` a
   * config whose current version is another one is refused (ConfigStaleError) before
   * anything is written — the optimistic concurrency of an edited `config get -o yaml`.
   */
  async apply(namespace: string, name: string, keys: Readonly<Record<string, string>>, message = '', basedOn?: number): Promise<{ version: number; changed: boolean }> {
    this.checkVersion(namespace, name, keys, message);
    const plan = await this.plan(namespace, name, keys, basedOn);
    if (plan.unchanged) return { version: plan.current, changed: false };
    return { version: await this.store(namespace, name, keys, message, plan.read ?? (await this.pointerOrCreate(namespace, name))), changed: true };
  }

  /**
   * What apply() would do, without writing: `unchanged` when the keys are the current
   * version's; throws ConfigStaleError when `basedOn` is given and no longer current.
   * `config import` asks this of every ConfigMap before it writes any.
   */
  async plan(
    namespace: string,
    name: string,
    keys: Readonly<Record<string, string>>,
    basedOn?: number,
  ): Promise<{ unchanged: boolean; current: number; read: { pointer: ConfigPointer; dataVersion: number } | null }> {
    const read = await this.pointer(namespace, name);
    const current = read?.pointer.version ?? 0;
    if (current > 0) {
      const node = await this.session.get(`${this.pointerPath(namespace, name)}/${versionNode(current)}`);
      // A pointer naming a pruned version: nothing to compare with, so a new version is written.
      if (node && sameKeys(parseVersion(node.data, versionNode(current)).keys, keys)) return { unchanged: true, current, read };
    }
    if (basedOn !== undefined && basedOn !== current) throw new ConfigStaleError(`${namespace}/${name}`, basedOn, current);
    return { unchanged: false, current, read };
  }

  private checkVersion(namespace: string, name: string, keys: Readonly<Record<string, string>>, message: string): void {
    parseConfigName(name);
    for (const key of Object.keys(keys)) parseConfigKey(key);
    if (Object.keys(keys).length === 0) throw new ConfigError(`config ${namespace}/${name}: a version needs at least one key`);
    const size = Buffer.byteLength(JSON.stringify({ keys, message, createdAt: this.now().toISOString(), parent: Number.MAX_SAFE_INTEGER }));
    if (size > this.maxBytes) {
      throw new ConfigError(`config ${namespace}/${name}: the version is ${size} bytes, over the ${this.maxBytes} bytes the ZooKeeper ensemble accepts (jute.maxbuffer); split it into several configs`);
    }
  }

  /** Writes the version as a child of the pointer, then moves the pointer to it by compare-and-set against `read`. */
  private async store(namespace: string, name: string, keys: Readonly<Record<string, string>>, message: string, read: { pointer: ConfigPointer; dataVersion: number }): Promise<number> {
    const path = this.pointerPath(namespace, name);
    const data = JSON.stringify({ keys, message, createdAt: this.now().toISOString(), parent: read.pointer.version });
    const created = await this.session.create(`${path}/v-`, data, 'persistent-sequential', this.options.acl);
    const version = versionOf(created.slice(created.lastIndexOf('/') + 1));
    if (version === null) throw new ConfigError(`ZooKeeper named the new version ${created}, not v-<sequence>`);
    await this.compareAndSet(namespace, name, read, version);
    return version;
  }

  /**
   * Makes the keys of a stored version current again (`--to N`, or the previous one) by
   * storing them as a new version (message "rollback to version N" unless given), as Helm's
   * rollback makes a new revision. So the pointer only ever moves to a version its mover has
   * just written: a prune running meanwhile (which spares everything newer than the current
   * version it read) can never leave the pointer naming a deleted version. Keys equal to the
   * current version's write nothing ({changed: false}). Conflicts as set().
   */
  async rollback(namespace: string, name: string, to: number | 'previous', message?: string): Promise<{ version: number; changed: boolean; target: number; from: number }> {
    const read = await this.pointer(namespace, name);
    if (!read || read.pointer.version === 0) throw new ConfigError(`config ${namespace}/${name} does not exist`);
    const from = read.pointer.version;
    const target = to === 'previous' ? read.pointer.previous : to;
    if (target === null) throw new ConfigError(`config ${namespace}/${name} has no previous version to roll back to`);
    const source = await this.get(namespace, name, target);
    if (target === from) return { version: from, changed: false, target, from };
    const current = await this.session.get(`${this.pointerPath(namespace, name)}/${versionNode(from)}`);
    if (current && sameKeys(parseVersion(current.data, versionNode(from)).keys, source.keys)) return { version: from, changed: false, target, from };
    const version = await this.store(namespace, name, source.keys, message ?? `rollback to version ${target}`, read);
    return { version, changed: true, target, from };
  }

  /** A version (the current one by default) with its keys. */
  async get(namespace: string, name: string, version?: number): Promise<ConfigVersion> {
    const path = this.pointerPath(namespace, name);
    let wanted = version;
    if (wanted === undefined) {
      const read = await this.pointer(namespace, name);
      if (!read || read.pointer.version === 0) throw new ConfigError(`config ${namespace}/${name} does not exist`);
      wanted = read.pointer.version;
    }
    const node = await this.session.get(`${path}/${versionNode(wanted)}`);
    if (!node) {
      throw new ConfigError(
        version === undefined
          ? `config ${namespace}/${name} points to version ${wanted}, which does not exist (pruned or deleted by hand); roll back to a version in its history`
          : `config ${namespace}/${name} has no version ${wanted} (never made, or pruned beyond --keep)`,
      );
    }
    return { version: wanted, ...parseVersion(node.data, `${path}/${versionNode(wanted)}`) };
  }

  /** Every stored version, oldest first. */
  async history(namespace: string, name: string): Promise<ConfigHistoryEntry[]> {
    const path = this.pointerPath(namespace, name);
    const read = await this.pointer(namespace, name);
    if (!read) throw new ConfigError(`config ${namespace}/${name} does not exist`);
    const versions = (await childrenOrEmpty(this.session, path)).flatMap((n) => {
      const v = versionOf(n);
      return v === null ? [] : [v];
    });
    const entries: ConfigHistoryEntry[] = [];
    for (const version of versions.sort((a, b) => a - b)) {
      const node = await this.session.get(`${path}/${versionNode(version)}`);
      if (!node) continue;
      const { message, createdAt, parent } = parseVersion(node.data, `${path}/${versionNode(version)}`);
      entries.push({ version, message, createdAt, parent, current: version === read.pointer.version });
    }
    return entries;
  }

  /**
   * Deletes the oldest versions beyond the newest `keep`, never the current one nor the
   * one `--previous` would roll back to, nor any newer than the current one: such a version
   * may be a set's, stored and on its way to becoming current by compare-and-set. (A version
   * older than the current one never becomes current again: a rollback copies its keys.)
   * Returns the versions deleted.
   */
  async prune(namespace: string, name: string, keep = DEFAULT_KEEP): Promise<number[]> {
    if (!Number.isInteger(keep) || keep < 1) throw new ConfigError(`--keep must be a whole number of at least 1, got ${keep}`);
    const path = this.pointerPath(namespace, name);
    const read = await this.pointer(namespace, name);
    if (!read) return [];
    const versions = (await childrenOrEmpty(this.session, path)).flatMap((n) => {
      const v = versionOf(n);
      return v === null ? [] : [v];
    });
    const sorted = versions.sort((a, b) => b - a);
    const protectedVersions = new Set([read.pointer.version, read.pointer.previous]);
    const doomed = sorted.slice(keep).filter((v) => !protectedVersions.has(v) && v < read.pointer.version);
    for (const version of doomed) await this.session.delete(`${path}/${versionNode(version)}`);
    return doomed.sort((a, b) => a - b);
  }

  /** Deletes the config: its versions, then its pointer. */
  async delete(namespace: string, name: string): Promise<boolean> {
    const path = this.pointerPath(namespace, name);
    if (!(await this.session.exists(path))) return false;
    for (const child of await childrenOrEmpty(this.session, path)) await this.session.delete(`${path}/${child}`);
    await this.session.delete(path);
    return true;
  }

  private async pointerOrCreate(namespace: string, name: string): Promise<{ pointer: ConfigPointer; dataVersion: number }> {
    const existing = await this.pointer(namespace, name);
    if (existing) return existing;
    const path = this.pointerPath(namespace, name);
    await this.session.ensurePath(path.slice(0, path.lastIndexOf('/')), this.options.acl);
    try {
      await this.session.create(path, JSON.stringify({ version: 0 }), 'persistent', this.options.acl);
    } catch (err) {
      if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.NODEEXISTS)) throw err;
    }
    const read = await this.pointer(namespace, name);
    if (!read) throw new ConfigError(`config ${namespace}/${name} was deleted while it was being set`);
    return read;
  }

  private async compareAndSet(namespace: string, name: string, read: { pointer: ConfigPointer; dataVersion: number }, version: number): Promise<void> {
    const path = this.pointerPath(namespace, name);
    const next: ConfigPointer = { version, previous: read.pointer.version === 0 ? null : read.pointer.version, updatedAt: this.now().toISOString() };
    try {
      await this.session.set(path, JSON.stringify(next), read.dataVersion);
    } catch (err) {
      if (!(err instanceof ZooKeeperError && err.code === ZooKeeperCode.BADVERSION)) throw err;
      const now = await this.pointer(namespace, name);
      throw new ConfigConflictError(`${namespace}/${name}`, version, now?.pointer.version ?? 0);
    }
  }
}

/** One config as `zkleader status` shows it. */
export interface ConfigStatus {
  /** `<namespace>/<name>` */
  readonly config: string;
  /** The current version (0: none yet). */
  readonly version: number;
  readonly updatedAt: string | null;
  /** How many versions are stored. */
  readonly versions: number;
}

/**
 * Every config under `root` the session may read, sorted by namespace and name; a
 * namespace it may not read (another tenant's) is skipped (readElections reports those).
 */
export async function listConfigs(session: ZooKeeperSession, root: string): Promise<ConfigStatus[]> {
  const result: ConfigStatus[] = [];
  for (const namespace of (await childrenOrEmpty(session, root)).sort()) {
    let names: string[];
    try {
      names = await childrenOrEmpty(session, `${root}/${namespace}/_config`);
    } catch (err) {
      if (err instanceof ZooKeeperError && err.code === ZooKeeperCode.NOAUTH) continue;
      throw err;
    }
    for (const name of names.sort()) {
      const path = `${root}/${namespace}/_config/${name}`;
      const node = await session.get(path);
      if (!node) continue;
      const pointer = parsePointer(node.data, path);
      const versions = (await childrenOrEmpty(session, path)).filter((n) => versionOf(n) !== null).length;
      result.push({ config: `${namespace}/${name}`, version: pointer.version, updatedAt: pointer.updatedAt, versions });
    }
  }
  return result;
}

/** A kubectl-like table of configs. */
export function formatConfigTable(configs: readonly ConfigStatus[]): string {
  const rows = [['CONFIG', 'VERSION', 'VERSIONS', 'UPDATED'], ...configs.map((c) => [c.config, String(c.version), String(c.versions), c.updatedAt ?? '<never>'])];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return `${rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3))).join('')).join('\n')}\n`;
}

function parseVersion(data: Buffer, path: string): Omit<ConfigVersion, 'version'> {
  try {
    const v = JSON.parse(data.toString('utf8')) as { keys?: unknown; message?: unknown; createdAt?: unknown; parent?: unknown };
    if (!v.keys || typeof v.keys !== 'object' || Array.isArray(v.keys) || Object.values(v.keys).some((x) => typeof x !== 'string')) throw new Error('keys');
    const names = Object.keys(v.keys);
    if (names.length === 0) throw new Error('keys');
    // Written by hand (the admin can): a key that is no ConfigMap key never reaches a file name.
    const bad = names.find((k) => !isConfigKey(k));
    if (bad !== undefined) throw new ConfigError(`config version ${path} has the key ${JSON.stringify(bad)}, which is no ConfigMap key: refused`);
    return {
      keys: v.keys as Record<string, string>,
      message: typeof v.message === 'string' ? v.message : '',
      createdAt: typeof v.createdAt === 'string' ? v.createdAt : '',
      parent: typeof v.parent === 'number' ? v.parent : 0,
    };
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config version ${path} is not a {"keys": {...}} document with at least one key`);
  }
}
