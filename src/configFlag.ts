import { UsageError } from '../cli/flags.js';
import { loadInjectorConfig, type InjectorConfig } from './config.js';

/**
 * `--config FILE` of the webhook and inject commands; a bad file is a usage error
 * (exit 2) naming the flag, the file and the field.
 */
export async function loadConfigFlag(path: string | undefined): Promise<InjectorConfig> {
  // Imported when needed: cli/main.ts lists the commands, so a static import could form a cycle.
  const { version } = await import('../cli/main.js');
  try {
    return loadInjectorConfig(path, version);
  } catch (err) {
    throw new UsageError(`--config: ${(err as Error).message}`, { cause: err });
  }
}
