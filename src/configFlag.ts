import { UsageError, optionalString } from '../cli/flags.js';
import { loadInjectorConfig, type InjectorConfig } from './config.js';

/** `--sidecar-image` of the webhook and inject commands (env ZKLEADER_SIDECAR_IMAGE in deploy/). */
export const sidecarImageFlag = optionalString({
  description: "image of the injected sidecar when the config sets none: the webhook's own (deploy/ copies it here); default ghcr.io/zkleader/zkleader:v<version>",
  valueName: 'IMAGE',
  parse: (raw) => {
    if (raw === '' || /\s/.test(raw)) throw new Error(`expected an image reference such as ghcr.io/zkleader/zkleader:v1.0.0, got ${JSON.stringify(raw)}`);
    return raw;
  },
});

/**
 * `--config FILE` of the webhook and inject commands; a bad file is a usage error
 * (exit 2) naming the flag, the file and the field.
 */
export async function loadConfigFlag(path: string | undefined, sidecarImage?: string): Promise<InjectorConfig> {
  // Imported when needed: cli/main.ts lists the commands, so a static import could form a cycle.
  const { version } = await import('../cli/main.js');
  try {
    return loadInjectorConfig(path, version, sidecarImage);
  } catch (err) {
    throw new UsageError(`--config: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Why the injected image may not be this version's sidecar: its tag is not `v<version>`.
 * An image pinned by digest cannot be checked and gives no warning.
 */
export function imageVersionWarning(image: string, version: string): string | undefined {
  if (image.includes('@')) return undefined;
  const lastPart = image.slice(image.lastIndexOf('/') + 1);
  const tag = lastPart.includes(':') ? lastPart.slice(lastPart.indexOf(':') + 1) : undefined;
  if (tag === `v${version}`) return undefined;
  return (
    `the injected sidecar image ${image} is not tagged v${version}, this webhook's version: sidecars may differ from the webhook ` +
    "(set the image in one place: deploy/kustomization.yaml's images, whose replacements copy it to ZKLEADER_SIDECAR_IMAGE)"
  );
}
