import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commands } from '../../cli/commands.js';
import { podSpecsOf, renderKustomization } from '../support/kustomize.js';

const root = join(import.meta.dirname, '..', '..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const stages = instructions.filter((line) => line.startsWith('FROM '));
const finalStage = instructions.slice(instructions.lastIndexOf(stages.at(-1) ?? ''));

// No container engine here, so the image is checked as text: what each instruction promises.
describe('the Dockerfile', () => {
  it('builds and runs on the same Node 24 Debian image', () => {
    expect(instructions).toContain('ARG NODE_IMAGE=node:24-bookworm-slim');
    expect(stages.length).toBe(3);
    for (const from of stages) expect(from).toMatch(/^FROM (--platform=\$BUILDPLATFORM )?\$\{NODE_IMAGE\}( AS \w+)?$/);
  });

  it('builds for amd64 and arm64: the native addon per target platform, the TypeScript once on the build machine', () => {
    expect(stages).toEqual(['FROM ${NODE_IMAGE} AS dependencies', 'FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE}']);
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const build = readme.split('\n').find((line) => line.startsWith('docker buildx build'));
    expect(build).toMatch(/--platform linux\/amd64,linux\/arm64 /);
  });

  it('installs production dependencies from the lockfile, building the patched native addon against the image Node', () => {
    // The whole install (the postinstall step applies patches/ with patch-package, a dev
    // dependency, and rebuilds the addon), then the dev dependencies pruned.
    expect(dockerfile).toMatch(/npm_config_nodedir=\/usr\/local npm ci --no-audit --no-fund \\\n && npm prune --omit=dev/);
    expect(dockerfile).toContain('COPY patches ./patches');
    expect(dockerfile).toContain('test -f node_modules/zookeeper/build/Release/zookeeper.node');
    expect(finalStage).toContain('COPY --from=dependencies /app/node_modules ./node_modules');
    expect(finalStage).toContain('COPY --from=build /app/dist ./dist');
  });

  it('runs as a non-root user with an exec-form entrypoint on the built CLI', () => {
    expect(finalStage).toContain('USER 65532:65532');
    expect(finalStage).toContain('ENTRYPOINT ["node", "/app/dist/cli/zkleader.js"]');
    // The entrypoint is what tsc -p tsconfig.build.json emits.
    expect(existsSync(join(root, 'dist', 'cli', 'zkleader.js'))).toBe(true);
    expect(finalStage.some((line) => /^(RUN|SHELL)\b/.test(line))).toBe(false);
  });

  it('copies every source folder the build compiles, and the context leaves out what the build does not need', () => {
    const buildIncludes = (JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] }).include;
    for (const dir of buildIncludes) expect(instructions).toContain(`COPY ${dir} ./${dir}`);
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', '.tools', '.git', 'test']) expect(ignored).toContain(entry);
  });

  it('is started by the manifests with subcommands the CLI has', () => {
    const names = new Set(commands.map((c) => c.name));
    const objects = ['deploy', 'deploy/zookeeper', 'deploy/example'].flatMap((dir) => renderKustomization(join(root, dir)));
    const ours = objects
      .flatMap((obj) => podSpecsOf(obj))
      .flatMap((spec) => (spec.containers as { image: string; args?: string[]; command?: string[] }[]))
      .filter((c) => c.image.startsWith('ghcr.io/zkleader/zkleader:'));
    expect(ours.length).toBe(3);
    for (const c of ours) {
      expect(c.command).toBeUndefined();
      expect(names.has(c.args?.[0] ?? '')).toBe(true);
    }
  });
});
