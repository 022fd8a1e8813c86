import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadInjectorConfig, type InjectorConfig } from '../../src/config.js';

/**
 * The golden cases of the injector: `<case>.yaml` is the input, beside it
 * `<case>.injected.yaml` (the output), or `<case>.refused.txt` (the refusal), and
 * `<case>.warnings.txt` when there are warnings. `make golden` rewrites them. A case
 * is injected with webhook-config.yaml, or with `<case>.webhook-config.yaml` where
 * that exists (a setting the other cases must not get).
 */
export const goldenDir = join(import.meta.dirname, '..', 'golden', 'inject');
export const goldenConfigFile = join(goldenDir, 'webhook-config.yaml');
/** Fixed, so that a release does not rewrite every golden file. */
export const goldenVersion = '0.1.0';

/** The --config file of a case: its own `<case>.webhook-config.yaml`, else the common one. */
export function goldenConfigFileFor(name: string): string {
  const own = join(goldenDir, `${name}.webhook-config.yaml`);
  return existsSync(own) ? own : goldenConfigFile;
}

/** The configuration of the case `name`; without a name, the common one. */
export function goldenConfig(name?: string): InjectorConfig {
  return loadInjectorConfig(name === undefined ? goldenConfigFile : goldenConfigFileFor(name), goldenVersion);
}

export function goldenCases(): string[] {
  return readdirSync(goldenDir)
    .filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml') && !f.endsWith('webhook-config.yaml'))
    .map((f) => f.replace(/\.yaml$/, ''))
    .sort();
}

/**
 * UPDATE_GOLDEN=1 rewrites the expected files — but never under `make test` (which sets
 * ZKLEADER_NO_GOLDEN_UPDATE) or CI: there it would turn every golden comparison into a
 * comparison of the output with itself. `make golden` is the way to rewrite them.
 */
export function goldenUpdateRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.UPDATE_GOLDEN !== '1') return false;
  return !(env.ZKLEADER_NO_GOLDEN_UPDATE === '1' || (env.CI !== undefined && env.CI !== '' && env.CI !== 'false'));
}

export const updateGolden = goldenUpdateRequested(process.env);

/** The expected text of a golden file, or undefined when it does not exist; with UPDATE_GOLDEN=1 writes `actual` first. */
export function golden(file: string, actual: string | undefined): string | undefined {
  const path = join(goldenDir, file);
  if (updateGolden) {
    if (actual === undefined) rmSync(path, { force: true });
    else writeFileSync(path, actual);
  }
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}
