import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The checkout this module belongs to: the nearest directory upward holding
 * package.json. Found, not computed, because test/support also runs compiled from
 * dist-demo/ (make demo), one level deeper than its source.
 */
function findRepoRoot(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'zkleader'))) return dir;
  }
  throw new Error(`no package.json with bin/zkleader in any directory above ${import.meta.dirname}`);
}

export const repoRoot = findRepoRoot();
export const zkleaderBin = join(repoRoot, 'bin', 'zkleader');
