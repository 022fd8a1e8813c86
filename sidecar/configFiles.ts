import { mkdir, mkdtemp, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseConfigKey, type ConfigVersion } from '../zookeeper/configStore.js';

/** What `<dir>/config.json` and `GET /config` say of one config. */
export interface ConfigSummary {
  readonly version: number;
  readonly updatedAt: string;
  readonly keys: readonly string[];
}

/**
 * Writes configs under `<dir>/config/<NAME>/` the way the kubelet writes ConfigMap volumes
 * (AtomicWriter): all keys of a version go into a new directory `..v<N>-<time>-<random>`, then the
 * symlink `..data` is switched to it with one rename, and each `<KEY>` is a symlink to
 * `..data/<KEY>`. A reader that resolves `..data` once sees the keys of one version; the
 * previous version's directory is kept until the next switch, so a reader that resolved it
 * just before can finish. Then `<dir>/config.json` is replaced (write and rename).
 */
export class ConfigFileWriter {
  private readonly summaries = new Map<string, ConfigSummary>();
  private chain: Promise<void> = Promise.resolve();
  private lastError: Error | null = null;

  constructor(private readonly dir: string) {}

  /** Writes one config version; writes are serialised. */
  write(name: string, version: ConfigVersion, now = new Date()): Promise<void> {
    const run = this.chain.then(() => this.writeNow(name, version, now));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The configs on disk, as config.json has them. */
  get written(): Readonly<Record<string, ConfigSummary>> {
    return Object.fromEntries(this.summaries);
  }

  get error(): Error | null {
    return this.lastError;
  }

  private async writeNow(name: string, version: ConfigVersion, now: Date): Promise<void> {
    try {
      const base = join(this.dir, 'config', name);
      await mkdir(base, { recursive: true });
      const keys = Object.keys(version.keys).sort();
      // The store refuses such keys; a file name is checked here too, where it matters.
      for (const key of keys) parseConfigKey(key);
      // Unique even for the same version twice within a millisecond (v1, v2, v1 again).
      const dataDir = basename(await mkdtemp(join(base, `..v${version.version}-${now.getTime()}-`)));
      for (const key of keys) await writeFile(join(base, dataDir, key), version.keys[key] ?? '');
      const before = await readlink(join(base, '..data')).catch(() => null);
      await rm(join(base, '..data_tmp'), { force: true });
      await symlink(dataDir, join(base, '..data_tmp'));
      await rename(join(base, '..data_tmp'), join(base, '..data'));
      // The visible names: one symlink per key through ..data; keys the version no longer has go.
      const entries = await readdir(base);
      for (const key of keys) if (!entries.includes(key)) await symlink(join('..data', key), join(base, key));
      for (const entry of entries) {
        if (entry.startsWith('..') || keys.includes(entry)) continue;
        await rm(join(base, entry), { force: true });
      }
      // Older version directories than the one just replaced go (readers of it may finish).
      for (const entry of entries) if (entry.startsWith('..v') && entry !== before && entry !== dataDir) await rm(join(base, entry), { recursive: true, force: true });
      this.summaries.set(name, { version: version.version, updatedAt: now.toISOString(), keys });
      const tmp = join(this.dir, '.config.json.tmp');
      await writeFile(tmp, `${JSON.stringify(this.written, null, 2)}\n`);
      await rename(tmp, join(this.dir, 'config.json'));
      this.lastError = null;
    } catch (err) {
      this.lastError = err as Error;
      throw err;
    }
  }
}
