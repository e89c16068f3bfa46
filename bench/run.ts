/**
 * `npm run bench`: every benchmark against the local stack (`npm run bench` brings it up first).
 * `npm run bench -- sync` (or `priority`, `reconcile`, `minilm`, `failover`, `cli`, `peer`, `scaling`, `kafka`) runs one.
 */
import { runCliStartBench } from './cli-start.ts';
import { runFailoverBench } from './failover.ts';
import { runKafkaClientBench } from './kafka-client.ts';
import { runMinilmBench } from './minilm.ts';
import { runPeerLangchainBench } from './peer-langchain.ts';
import { runPriorityBench } from './priority.ts';
import { runReconcileBench } from './reconcile.ts';
import { runScalingBench } from './scaling.ts';
import { runSyncPathBench } from './sync-path.ts';

const benches: Record<string, () => Promise<void>> = {
  sync: runSyncPathBench,
  priority: runPriorityBench,
  reconcile: runReconcileBench,
  minilm: runMinilmBench,
  failover: runFailoverBench,
  cli: runCliStartBench,
  peer: runPeerLangchainBench,
  scaling: runScalingBench,
  kafka: runKafkaClientBench,
};
const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(benches)) {
  const bench = benches[name];
  if (!bench) throw new Error(`unknown bench ${name}: ${Object.keys(benches).join(', ')}`);
  process.stdout.write(`\n### ${name}\n`);
  await bench();
}
process.exit(0);
