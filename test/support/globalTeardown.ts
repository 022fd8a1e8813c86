import { join } from 'node:path';
import type * as ProcessRegistry from './processRegistry.js';
import type { TrackedProcess } from './processRegistry.js';

function describe(entry: TrackedProcess): string {
  return `pid ${entry.pid} (${entry.what}, started by process ${entry.owner})`;
}

/**
 * The proof that no test leaves a server behind: every child a harness started is
 * recorded (test/support/processRegistry.ts) until its owner sees it exit; any record
 * of this run still here — a child alive now, or one that died only with its test
 * process because nobody closed it — fails the run. Children of crashed earlier runs
 * are killed and reported, without failing.
 */
export default async function globalTeardown(): Promise<void> {
  // Jest loads global hooks without its module name mapping, so `./processRegistry.js`
  // would not resolve to the TypeScript source; import the source by its own name.
  const registry = (await import(join(import.meta.dirname, 'processRegistry.ts'))) as typeof ProcessRegistry;
  const report = await registry.sweepRegistry(process.pid);
  for (const entry of report.orphansKilled) {
    process.stderr.write(`[globalTeardown] killed ${describe(entry)}, left behind by an earlier test run that died\n`);
  }
  const leaks = [
    ...report.killed.map((e) => `${describe(e)} was still running after the tests; killed it`),
    ...report.outlivedOwner.map((e) => `${describe(e)} was still running when its test process ended${e.leftRunning === true ? ' (its exit hook killed it)' : ''}`),
  ];
  for (const leak of leaks) process.stderr.write(`[globalTeardown] ${leak}\n`);
  if (leaks.length > 0) {
    throw new Error(`${leaks.length} test process(es) were not stopped by the tests that started them (close() or kill() them in afterAll/afterEach): ${leaks.join('; ')}`);
  }
}
