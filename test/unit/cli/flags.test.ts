import { describe, expect, it } from '@jest/globals';
import { parseBoundedDuration, parseDuration } from '../../../cli/duration.js';
import {
  UsageError,
  booleanFlag,
  defaultedString,
  envName,
  formatHelp,
  optionalString,
  parseFlags,
  repeatedString,
  requiredString,
} from '../../../cli/flags.js';

const specs = {
  zookeeper: requiredString({ description: 'connect string', valueName: 'H:P[,..]' }),
  'pod-name': requiredString({ description: 'pod', env: ['POD_NAME'] }),
  'session-timeout': defaultedString({
    description: 'session timeout',
    default: '10s',
    parse: (raw) => parseBoundedDuration(raw, 4000, 40000),
  }),
  kubeconfig: optionalString({ description: 'kubeconfig file' }),
  'no-label': booleanFlag({ description: 'do not label' }),
};

function parse(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return parseFlags(specs, argv, env);
}

describe('parseFlags', () => {
  it('reads flags, applies defaults and converts values', () => {
    const { flags, help } = parse(['--zookeeper', 'a:2181', '--pod-name', 'p-1']);
    expect(help).toBe(false);
    expect(flags).toEqual({ zookeeper: 'a:2181', 'pod-name': 'p-1', 'session-timeout': 10000, kubeconfig: undefined, 'no-label': false });
  });

  it('falls back to ZKLEADER_<FLAG>, then to the extra environment names', () => {
    const { flags } = parse([], { ZKLEADER_ZOOKEEPER: 'z:1', POD_NAME: 'from-downward-api', ZKLEADER_NO_LABEL: 'true' });
    expect(flags.zookeeper).toBe('z:1');
    expect(flags['pod-name']).toBe('from-downward-api');
    expect(flags['no-label']).toBe(true);
    expect(parse([], { ZKLEADER_ZOOKEEPER: 'z:1', ZKLEADER_POD_NAME: 'first', POD_NAME: 'second' }).flags['pod-name']).toBe('first');
  });

  it('prefers the command line over the environment', () => {
    const { flags } = parse(['--zookeeper', 'cli:1', '--pod-name', 'p'], { ZKLEADER_ZOOKEEPER: 'env:1' });
    expect(flags.zookeeper).toBe('cli:1');
  });

  it.each([
    [['--pod-name', 'p'], '--zookeeper is required'],
    [['--zookeeper', 'z', '--pod-name', 'p', '--bogus'], 'unknown flag --bogus'],
    [['--zookeeper', 'z', '--pod-name', 'p', '--session-timeout', '2s'], '--session-timeout: expected a duration from 4s to 40s, got "2s"'],
    [['--zookeeper', 'z', '--pod-name', 'p', '--session-timeout', 'ten'], '--session-timeout: expected a duration such as "10s" or "10000ms", got "ten"'],
    [['--zookeeper', 'z', '--pod-name', 'p', 'extra'], 'unexpected argument "extra"'],
    [['--zookeeper'], '--zookeeper needs a value'],
  ])('refuses %j with a message naming the flag', (argv, message) => {
    expect(() => parse(argv)).toThrow(new UsageError(message));
  });

  it('names the environment variable a bad value came from', () => {
    expect(() => parse(['--zookeeper', 'z', '--pod-name', 'p'], { ZKLEADER_SESSION_TIMEOUT: '99s' })).toThrow(
      '--session-timeout (from ZKLEADER_SESSION_TIMEOUT): expected a duration from 4s to 40s, got "99s"',
    );
    expect(() => parse(['--zookeeper', 'z', '--pod-name', 'p'], { ZKLEADER_NO_LABEL: 'perhaps' })).toThrow(
      '--no-label (from ZKLEADER_NO_LABEL): expected true or false, got "perhaps"',
    );
  });

  it('reports --help without validating the rest', () => {
    expect(parse(['--help']).help).toBe(true);
    expect(parse(['-h']).help).toBe(true);
  });
});

describe('repeatedString', () => {
  const repeated = {
    'from-literal': repeatedString({ description: 'a literal', valueName: 'KEY=VALUE' }),
    port: repeatedString({ description: 'a port', parse: (raw) => {
      if (!/^\d+$/.test(raw)) throw new Error(`expected a number, got ${JSON.stringify(raw)}`);
      return Number(raw);
    } }),
  };

  it('collects every value in command-line order, each converted; none when absent', () => {
    const { flags } = parseFlags(repeated, ['--from-literal', 'a=1', '--port', '80', '--from-literal=b=2', '--from-literal', 'a=3'], {});
    expect(flags).toEqual({ 'from-literal': ['a=1', 'b=2', 'a=3'], port: [80] });
    expect(parseFlags(repeated, [], {}).flags).toEqual({ 'from-literal': [], port: [] });
  });

  it('takes one value from the environment, only when the command line gives none', () => {
    expect(parseFlags(repeated, [], { ZKLEADER_FROM_LITERAL: 'x=1,y=2' }).flags['from-literal']).toEqual(['x=1,y=2']);
    expect(parseFlags(repeated, ['--from-literal', 'z=3'], { ZKLEADER_FROM_LITERAL: 'x=1' }).flags['from-literal']).toEqual(['z=3']);
  });

  it('names the flag of a bad or missing value, and says it is repeatable in --help', () => {
    expect(() => parseFlags(repeated, ['--port', '80', '--port', 'http'], {})).toThrow(new UsageError('--port: expected a number, got "http"'));
    expect(() => parseFlags(repeated, ['--from-literal'], {})).toThrow(new UsageError('--from-literal needs a value'));
    expect(formatHelp('x', 'y', repeated)).toMatch(/--from-literal KEY=VALUE +a literal \(repeatable\) \[env ZKLEADER_FROM_LITERAL\]/);
  });

  it('a single-valued flag given twice keeps the last value, as before', () => {
    expect(parse(['--zookeeper', 'a:1', '--zookeeper', 'b:2', '--pod-name', 'p']).flags.zookeeper).toBe('b:2');
  });
});

describe('formatHelp', () => {
  it('lists every flag with its environment variable and default', () => {
    const text = formatHelp('zkleader x [flags]', 'Does x.', specs);
    expect(text).toContain('--zookeeper H:P[,..]');
    expect(text).toContain('[env ZKLEADER_POD_NAME, POD_NAME]');
    expect(text).toContain('(default 10s)');
    expect(text).toContain('-h, --help');
  });
});

describe('envName', () => {
  it('upper-snake-cases the flag name', () => {
    expect(envName('session-timeout')).toBe('ZKLEADER_SESSION_TIMEOUT');
  });
});

describe('parseDuration', () => {
  it.each([
    ['10s', 10000],
    ['10000ms', 10000],
    ['0ms', 0],
  ])('%s is %d ms', (raw, ms) => expect(parseDuration(raw)).toBe(ms));

  it.each(['10', '1.5s', '-1s', '10m', '', 's'])('refuses %j', (raw) => {
    expect(() => parseDuration(raw)).toThrow('expected a duration such as "10s" or "10000ms"');
  });
});
