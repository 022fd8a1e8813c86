import { pino, type Logger, type LevelWithSilent } from 'pino';

/**
 * The one logger of a zkleader process: JSON lines on stderr, level from
 * ZKLEADER_LOG_LEVEL (default info). Credentials never go into fields.
 */
export function createLogger(component: string, env: NodeJS.ProcessEnv = process.env): Logger {
  const level = (env.ZKLEADER_LOG_LEVEL ?? 'info') as LevelWithSilent;
  return pino(
    {
      name: 'zkleader',
      level: pino.levels.values[level] !== undefined || level === 'silent' ? level : 'info',
      base: { component },
      redact: { paths: ['token', 'authorization', 'headers.authorization', '*.token', 'key', 'tlsKey'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
