// The fixed-rate load of bench/webhook.ts in a process of its own: a fresh heap, not the one
// autocannon just filled in the benchmark process (whose GC pauses delayed the paced sends
// and showed as the server's tail: p99 6.5-9.8 ms against 3.8-6.6 ms from a fresh process,
// same server, same answer). Runs `rounds` rounds and sends the results to its parent.
// Usage (fork): pacedClient.js '<pacedLoad options as JSON>' <rounds>
import { pacedLoad, type PacedResult } from './pacedLoad.js';

const [optionsJson = '{}', roundsArg = '1'] = process.argv.slice(2);
const options = JSON.parse(optionsJson) as Parameters<typeof pacedLoad>[0];
const results: PacedResult[] = [];
for (let i = 0; i < Number(roundsArg); i++) results.push(await pacedLoad(options));
process.send?.(results, () => process.exit(0));
