/** `npm run bench`: every benchmark, against the local stack (brought up if needed). */
import { runSyncPathBench } from './sync-path.ts';

await runSyncPathBench();
process.exit(0);
