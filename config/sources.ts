import { open, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError } from '../cli/flags.js';
import { DEFAULT_MAX_VERSION_BYTES, parseConfigKey } from '../zookeeper/configStore.js';
import { ConfigCommandError } from './subcommand.js';

/*
 * The keys of a new version from --from-file and --from-literal, with kubectl's meanings
 * (`kubectl create configmap`):
 *   --from-file PATH       the file, under its base name
 *   --from-file KEY=PATH   the file, under KEY
 *   --from-file DIR        every regular file of the directory, each under its name
 *                          (subdirectories, symbolic links and other special files are skipped)
 *   --from-literal K=V     the value V under K (V may hold "=")
 * A key given twice is refused, as kubectl refuses it. Values are UTF-8 text: a config holds
 * no binary data (kubectl would put it in binaryData, which zkleader does not have).
 */

export interface Sources {
  readonly fromFile: readonly string[];
  readonly fromLiteral: readonly string[];
}

/** kubectl's ParseFileSource: `PATH` (key = base name) or `KEY=PATH`. */
export function parseFileSource(source: string): { key: string | null; path: string } {
  const separators = source.split('=').length - 1;
  if (separators === 0) return { key: null, path: source };
  if (separators > 1) throw new UsageError(`--from-file ${JSON.stringify(source)}: key names or file paths cannot contain "="`);
  const [key, path] = source.split('=') as [string, string];
  if (key === '') throw new UsageError(`--from-file ${JSON.stringify(source)}: the key name for file path ${path} is missing`);
  if (path === '') throw new UsageError(`--from-file ${JSON.stringify(source)}: the file path for key name ${key} is missing`);
  return { key, path };
}

/** kubectl's ParseLiteralSource: `KEY=VALUE`, split at the first "=". */
export function parseLiteralSource(source: string): { key: string; value: string } {
  const at = source.indexOf('=');
  // The text is not quoted: it may be a secret value typed without its key.
  if (at < 0) throw new UsageError('--from-literal: expected KEY=VALUE, got a value without "="');
  return { key: source.slice(0, at), value: source.slice(at + 1) };
}

function checkKey(flag: string, key: string): string {
  try {
    return parseConfigKey(key);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads one file as UTF-8 text, refusing (before reading it) a file larger than a version may be. */
async function readTextFile(flag: string, path: string, maxBytes: number): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${JSON.stringify(path)}: ${describeFsError(err)}`);
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) {
      throw new ConfigCommandError(`${flag} ${path}: the file is ${size} bytes, over the ${maxBytes} bytes a version may hold (the ZooKeeper ensemble's jute.maxbuffer); split it into several configs`);
    }
    const data = await handle.readFile();
    try {
      return utf8.decode(data);
    } catch {
      throw new ConfigCommandError(`${flag} ${path}: the file is not UTF-8 text; a config holds text values only (no binaryData): encode it, e.g. as base64, first`);
    }
  } finally {
    await handle.close();
  }
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return code ?? (err as Error).message;
}

/** The keys of `--from-file`/`--from-literal`, in the order given; throws UsageError naming the flag. */
export async function readSources(sources: Sources, maxBytes = DEFAULT_MAX_VERSION_BYTES): Promise<Record<string, string>> {
  if (sources.fromFile.length === 0 && sources.fromLiteral.length === 0) {
    throw new UsageError('no keys: give --from-file [KEY=]PATH or --from-literal KEY=VALUE (each as often as needed)');
  }
  const keys: Record<string, string> = {};
  const origin = new Map<string, string>();
  /** `where` names the flag and, for files, the path (never a literal's value). */
  const add = (where: string, key: string, value: string) => {
    checkKey(where, key);
    const earlier = origin.get(key);
    if (earlier !== undefined) throw new UsageError(`${where}: key ${JSON.stringify(key)} is given twice (also by ${earlier})`);
    origin.set(key, where);
    // A key named __proto__ is a ConfigMap key like any other: an own property, not the prototype.
    Object.defineProperty(keys, key, { value, enumerable: true, writable: true, configurable: true });
  };

  for (const source of sources.fromFile) {
    const { key, path } = parseFileSource(source);
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      throw new UsageError(`--from-file: cannot read ${JSON.stringify(path)}: ${describeFsError(err)}`);
    }
    if (info.isDirectory()) {
      if (key !== null) throw new UsageError(`--from-file ${source}: cannot give a key name for a directory path`);
      let entries;
      try {
        entries = await readdir(path, { withFileTypes: true });
      } catch (err) {
        throw new UsageError(`--from-file: cannot read the directory ${JSON.stringify(path)}: ${describeFsError(err)}`);
      }
      const files = entries.filter((e) => e.isFile()).map((e) => e.name).sort();
      if (files.length === 0) throw new UsageError(`--from-file ${path}: the directory holds no regular files (subdirectories and symbolic links are skipped)`);
      for (const name of files) add(`--from-file ${join(path, name)}`, name, await readTextFile('--from-file', join(path, name), maxBytes));
    } else {
      add(`--from-file ${source}`, key ?? basename(path), await readTextFile('--from-file', path, maxBytes));
    }
  }
  for (const source of sources.fromLiteral) {
    const { key, value } = parseLiteralSource(source);
    add('--from-literal', key, value);
  }
  return keys;
}
