import { parseArgs } from 'node:util';

/** A mistake in a command line or its environment: exit code 2, one line naming the flag. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A string or a switch as given once; a repeated flag's values (repeatedString) as a list. */
type RawValue = string | boolean | readonly string[] | undefined;

/** One flag of a command; every flag can also come from the environment. */
export interface Flag<T> {
  readonly kind: 'string' | 'boolean';
  readonly description: string;
  /** Shown in --help, e.g. `H:P[,..]`. */
  readonly valueName?: string;
  readonly short?: string;
  /** May be given several times (repeatedString); convert gets every value, in order. */
  readonly multiple?: boolean;
  /** Environment names read after ZKLEADER_<FLAG>, e.g. the downward-API POD_NAME. */
  readonly env: readonly string[];
  /** Shown in --help. */
  readonly defaultText?: string;
  /** Turns the raw value (undefined when given neither as flag nor env) into T; throws UsageError. */
  readonly convert: (raw: RawValue, where: string) => T;
}

interface StringOptions<T> {
  description: string;
  valueName?: string;
  short?: string;
  env?: readonly string[];
  /** Validates and converts a given value; throw an Error whose message says what is expected. */
  parse?: (raw: string) => T;
}

function convertString<T>(raw: RawValue, where: string, parse: ((s: string) => T) | undefined): T {
  if (typeof raw !== 'string') throw new UsageError(`${where} needs a value`);
  if (!parse) return raw as T;
  try {
    return parse(raw);
  } catch (err) {
    throw new UsageError(`${where}: ${(err as Error).message}`);
  }
}

/** The parts of a string flag that only describe it (help text, names). */
function describeString(opts: StringOptions<unknown>): Omit<Flag<unknown>, 'convert' | 'defaultText'> {
  return {
    kind: 'string',
    description: opts.description,
    env: opts.env ?? [],
    ...(opts.valueName !== undefined && { valueName: opts.valueName }),
    ...(opts.short !== undefined && { short: opts.short }),
  };
}

/** A flag that must be given (on the command line or in the environment). */
export function requiredString<T = string>(opts: StringOptions<T>): Flag<T> {
  return {
    ...describeString(opts),
    convert: (raw, where) => {
      if (raw === undefined) throw new UsageError(`${where} is required`);
      return convertString(raw, where, opts.parse);
    },
  };
}

/** A flag with a default, validated like a given value. */
export function defaultedString<T = string>(opts: StringOptions<T> & { default: string }): Flag<T> {
  return {
    ...describeString(opts),
    defaultText: opts.default,
    convert: (raw, where) => convertString(raw ?? opts.default, where, opts.parse),
  };
}

/** A flag that may be absent. */
export function optionalString<T = string>(opts: StringOptions<T>): Flag<T | undefined> {
  return {
    ...describeString(opts),
    convert: (raw, where) => (raw === undefined ? undefined : convertString(raw, where, opts.parse)),
  };
}

/**
 * A flag that may be given any number of times (`--from-literal a=1 --from-literal b=2`);
 * its values in command-line order, none when absent. The environment gives one value.
 */
export function repeatedString<T = string>(opts: StringOptions<T>): Flag<T[]> {
  return {
    ...describeString(opts),
    multiple: true,
    convert: (raw, where) => {
      if (raw === undefined) return [];
      const given: readonly (string | boolean)[] = typeof raw === 'object' ? raw : [raw];
      return given.map((one) => convertString(one, where, opts.parse));
    },
  };
}

/** A switch, off by default; from the environment it takes true/false/1/0. */
export function booleanFlag(opts: { description: string; env?: readonly string[]; short?: string }): Flag<boolean> {
  return {
    kind: 'boolean',
    description: opts.description,
    env: opts.env ?? [],
    ...(opts.short !== undefined && { short: opts.short }),
    convert: (raw, where) => {
      if (raw === undefined) return false;
      if (typeof raw === 'boolean') return raw;
      if (typeof raw !== 'string') throw new UsageError(`${where} is a switch: give it once`);
      const v = raw.trim().toLowerCase();
      if (v === 'true' || v === '1' || v === 'yes') return true;
      if (v === 'false' || v === '0' || v === 'no' || v === '') return false;
      throw new UsageError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
    },
  };
}

export type FlagSpecs = Record<string, Flag<unknown>>;
export type FlagValues<S extends FlagSpecs> = { [K in keyof S]: S[K] extends Flag<infer T> ? T : never };

/** `session-timeout` → `ZKLEADER_SESSION_TIMEOUT`. */
export function envName(flag: string): string {
  return `ZKLEADER_${flag.replace(/-/g, '_').toUpperCase()}`;
}

export interface ParseResult<S extends FlagSpecs> {
  flags: FlagValues<S>;
  positionals: string[];
  help: boolean;
}

/**
 * Parses argv for one command: command-line flags first, then ZKLEADER_<FLAG>, then
 * the flag's extra environment names, then its default. Unknown flags, missing values
 * and invalid values throw UsageError naming the flag (or variable) at fault.
 */
export function parseFlags<S extends FlagSpecs>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  opts: { positionals?: boolean } = {},
): ParseResult<S> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.kind, ...(spec.short !== undefined && { short: spec.short }), ...(spec.multiple === true && { multiple: true }) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: opts.positionals ?? false });
  } catch (err) {
    throw new UsageError(describeParseArgsError(err as Error & { code?: string }));
  }
  const values = parsed.values as Record<string, RawValue>;
  if (values.help === true) {
    return { flags: {} as FlagValues<S>, positionals: parsed.positionals, help: true };
  }
  const flags: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    let raw: RawValue = values[name];
    let where = `--${name}`;
    if (raw === undefined) {
      for (const variable of [envName(name), ...spec.env]) {
        const fromEnv = env[variable];
        if (fromEnv !== undefined && fromEnv !== '') {
          raw = fromEnv;
          where = `--${name} (from ${variable})`;
          break;
        }
      }
    }
    flags[name] = spec.convert(raw, where);
  }
  return { flags: flags as FlagValues<S>, positionals: parsed.positionals, help: false };
}

function describeParseArgsError(err: Error & { code?: string }): string {
  // parseArgs messages are long and mention "strict:true"; keep the part that names the flag.
  const message = err.message.split('\n')[0] ?? err.message;
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag ${unknown[1]}`;
  const missing = /Option '([^']+)' argument missing/.exec(message);
  if (missing) return `${missing[1]?.replace(/^-\w, /, '').replace(/ <value>$/, '')} needs a value`;
  const positional = /Unexpected argument '([^']+)'/.exec(message);
  if (positional) return `unexpected argument ${JSON.stringify(positional[1])}`;
  return message.replace(/\. To specify a positional argument.*$/, '');
}

/** The --help text of a command, generated from its flag specs. */
export function formatHelp(usage: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '';
    const value = spec.kind === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : '';
    const left = `  ${short}--${name}${value}`;
    const envs = [envName(name), ...spec.env].join(', ');
    const def = spec.defaultText !== undefined ? ` (default ${spec.defaultText})` : '';
    const repeatable = spec.multiple === true ? ' (repeatable)' : '';
    return { left, right: `${spec.description}${def}${repeatable} [env ${envs}]` };
  });
  rows.push({ left: '  -h, --help', right: 'show this help' });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  return [`Usage: ${usage}`, '', summary, '', 'Flags:', ...rows.map((r) => r.left.padEnd(width) + r.right), ''].join('\n');
}
