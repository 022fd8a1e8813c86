// Run first by every `npm run bench:*` script (and usable before anything else that needs
// the project's Node): refuses, with a message that says what to do, a Node older than 22
// (the benchmarks and the build need what Node 22+ has; the machine's /usr/bin/node may be
// 20) and a Node of another major version than the one node_modules was installed for
// (the native zookeeper addon is built for that one, and would fail to load).
// Kept to syntax and modules every Node since 14 parses, so an old Node gets the message
// rather than a crash. Exits 0 when this Node will do, 1 (and says why on stderr) otherwise.
import { existsSync, readFileSync } from 'node:fs';
import { URL, fileURLToPath } from 'node:url';

const minimumMajor = 22;
const root = fileURLToPath(new URL('..', import.meta.url));
const running = process.versions.node;
const major = Number(running.split('.')[0]);
const what = process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event}` : 'this command';
const howToFix =
  "  Run it through make, which puts the project's Node first on PATH: `make bench` runs every benchmark;\n" +
  '  or put it first yourself: export PATH="' +
  root +
  '.tools/node/bin:$PATH" (scripts/setup.sh node installs it there if it is missing; `make setup` does the rest).\n';

function refuse(reason) {
  process.stderr.write(`${what}: ${reason}\n${howToFix}`);
  process.exitCode = 1;
}

if (!(major >= minimumMajor)) {
  refuse(`needs Node ${minimumMajor} or newer (the project's is 24); this is Node v${running} (${process.execPath}).`);
} else {
  // scripts/setup.sh records the Node it installed node_modules (and built the addon) for.
  const stamp = `${root}node_modules/.zkleader-installed`;
  const installedFor = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
  const installedMajor = Number(installedFor.replace(/^v/, '').split('.')[0]);
  if (installedFor && installedMajor !== major) {
    refuse(
      `node_modules was installed for Node ${installedFor} (the native zookeeper addon is built for it), ` +
        `but this is Node v${running} (${process.execPath}); the addon would not load.`,
    );
  }
}
