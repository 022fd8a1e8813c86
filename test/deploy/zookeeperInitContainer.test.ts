import { afterEach, describe, expect, it } from '@jest/globals';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { renderKustomization } from '../support/kustomize.js';

// The `conf` init container of deploy/zookeeper, run for real: its command copies the
// image's /conf into an emptyDir as uid 1000, and the kubelet creates that emptyDir owned
// by root with mode 0777. Here a fake /conf and a root-owned 0777 directory stand in for
// them, and setpriv (util-linux) switches to uid/gid 1000 as the pod's securityContext does.

const root = join(import.meta.dirname, '..', '..');
const sts = renderKustomization(join(root, 'deploy', 'zookeeper')).find((o) => o.kind === 'StatefulSet') as unknown as V1StatefulSet;
const podSpec = sts.spec?.template.spec;
const init = podSpec?.initContainers?.find((c) => c.name === 'conf');
const server = podSpec?.containers.find((c) => c.name === 'zookeeper');
const runAs = { uid: podSpec?.securityContext?.runAsUser ?? 1000, gid: podSpec?.securityContext?.runAsGroup ?? 1000 };

const setpriv = (process.env.PATH ?? '/usr/bin:/bin')
  .split(delimiter)
  .map((dir) => join(dir, 'setpriv'))
  .find((path) => existsSync(path));
const isRoot = process.getuid?.() === 0;

/** Every entry under `dir`, relative, sorted: files with their content and mode, links with their target, directories. */
function tree(dir: string, prefix = ''): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      const rel = prefix + name;
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) return [`${rel} -> ${readlinkSync(path)}`];
      if (stat.isDirectory()) return [`${rel}/`, ...tree(path, `${rel}/`)];
      return [`${rel} (${(stat.mode & 0o777).toString(8)}): ${readFileSync(path, 'utf8')}`];
    });
}

function run(file: string, args: string[], cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 10_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

it('the conf init container copies the image conf dir into the volume the server mounts at /conf', () => {
  const target = init?.volumeMounts?.find((m) => m.name === 'conf')?.mountPath;
  expect(target).toBe('/writable-conf');
  expect(server?.volumeMounts?.find((m) => m.name === 'conf')?.mountPath).toBe('/conf');
  expect(podSpec?.volumes?.find((v) => v.name === 'conf')?.emptyDir).toBeDefined();
  expect(init?.image).toBe(server?.image);
  expect(runAs).toEqual({ uid: 1000, gid: 1000 });
});

// Not root, setpriv cannot switch users: the test cannot run (on CI it runs as root).
const describeAsRoot = isRoot ? describe : describe.skip;
describeAsRoot(`the conf init container of deploy/zookeeper, run as uid 1000${isRoot ? '' : ' (skipped: the test process is not root, so it cannot switch to uid 1000)'}`, () => {
  it('needs setpriv (util-linux)', () => {
    expect(setpriv ?? 'setpriv not found in PATH: install util-linux').toMatch(/setpriv$/);
  });

  it('copies everything in /conf into the root-owned 0777 emptyDir, and a restart (volume already filled) succeeds too', async () => {
    const command = init?.command ?? [];
    const [shell, flag, script = ''] = command;
    expect([shell, flag, command.length]).toEqual(['bash', '-c', 3]);
    const sourcePath = '/conf';
    const targetPath = init?.volumeMounts?.find((m) => m.name === 'conf')?.mountPath ?? '/writable-conf';

    dir = mkdtempSync(join(tmpdir(), 'zkleader-initcontainer-'));
    chmodSync(dir, 0o755); // uid 1000 must reach what is inside
    const source = join(dir, 'image-conf');
    const target = join(dir, 'emptydir');
    // The image's /conf: a few files, a hidden one, a read-only one, a link and a subdirectory.
    mkdirSync(join(source, 'sub'), { recursive: true });
    writeFileSync(join(source, 'logback.xml'), '<configuration/>\n');
    writeFileSync(join(source, 'configuration.xsl'), '<xsl/>\n');
    writeFileSync(join(source, '.hidden'), 'dotfile\n');
    writeFileSync(join(source, 'read-only.cfg'), 'tickTime=2000\n');
    chmodSync(join(source, 'read-only.cfg'), 0o444);
    symlinkSync('logback.xml', join(source, 'link.xml'));
    writeFileSync(join(source, 'sub', 'nested.txt'), 'nested\n');
    // The emptyDir, as the kubelet makes it: root's, mode 0777.
    mkdirSync(target);
    chmodSync(target, 0o777);
    expect([statSync(target).uid, statSync(target).mode & 0o777]).toEqual([0, 0o777]);

    // Each mount path once; the target first, so that its name cannot be taken for the source's.
    expect(script.split(targetPath).length - 1).toBe(1);
    const local = script
      .split(targetPath)
      .map((part) => {
        expect(part.split(sourcePath).length - 1).toBeLessThanOrEqual(1);
        return part.split(sourcePath).join(source);
      })
      .join(target);
    expect(local).toContain(source);

    const args = [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--clear-groups', shell ?? 'bash', flag ?? '-c', local];
    const expected = tree(source);
    expect(expected).toHaveLength(7);

    const first = await run(setpriv ?? 'setpriv', args, dir);
    expect({ run: 'first', ...first }).toEqual({ run: 'first', code: 0, stderr: '' });
    expect(tree(target)).toEqual(expected);
    // Copied as uid 1000: the server (uid 1000) can write zoo.cfg next to them.
    expect(statSync(join(target, 'logback.xml')).uid).toBe(runAs.uid);

    // The container restarts (the pod's volumes stay): the files are already there.
    const second = await run(setpriv ?? 'setpriv', args, dir);
    expect({ run: 'restart', ...second }).toEqual({ run: 'restart', code: 0, stderr: '' });
    expect(tree(target)).toEqual(expected);
  });
});
