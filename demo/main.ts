import { runDemo } from './demo.js';

// The entry of `make demo` (compiled to dist-demo/demo/main.js by tsconfig.demo.json).
process.exitCode = await runDemo(process.stdout);
