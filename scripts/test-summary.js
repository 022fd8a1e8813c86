// Prints the one closing line CI reads: "N passed, N failed[, N skipped]".
// Counts jest's tests from its --json output, plus one failure per failed check
// (type check, lint) listed in the checks file. Exits 1 when anything failed or
// when jest produced no results (a crash before any test ran).
import { existsSync, readFileSync } from 'node:fs';

const [resultsPath, checksPath] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
let ok = true;
if (resultsPath && existsSync(resultsPath)) {
  const r = JSON.parse(readFileSync(resultsPath, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests;
  skipped = r.numPendingTests + (r.numTodoTests ?? 0);
  // A suite that fails to load has no failed tests but is a failure all the same.
  const brokenSuites = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
  failed += brokenSuites;
  if (!r.success || r.numTotalTests === 0) ok = false;
} else {
  console.error(`no jest results at ${resultsPath}`);
  failed += 1;
}
if (checksPath && existsSync(checksPath)) {
  const checks = readFileSync(checksPath, 'utf8').split('\n').filter(Boolean);
  for (const c of checks) console.error(`check failed: ${c}`);
  failed += checks.length;
}
if (failed > 0) ok = false;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok ? 0 : 1);
