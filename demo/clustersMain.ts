import { runClustersDemo } from './clusters.js';

// The entry of `make demo-clusters` (compiled to dist-demo/demo/clustersMain.js by tsconfig.demo.json).
process.exitCode = await runClustersDemo(process.stdout);
