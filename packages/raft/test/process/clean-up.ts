import type { ProcessCluster } from '../crash/process-cluster.js';
import type { LoadBalancedWriter } from './load-balanced-writer.js';

/**
 * After a process test, whether it passed or not: no writer left running, no child process left
 * behind (an orphan would hold CI's output pipe open). The kill comes first: it settles the write
 * in flight at once (its member is gone). A failed run's folder is kept for inspection.
 */
export async function cleanUpRun(
  label: string,
  cluster: ProcessCluster | undefined,
  writer: LoadBalancedWriter | undefined,
  passed: boolean,
): Promise<void> {
  const stopping = writer?.stop();
  await cluster?.killAll();
  await stopping;
  if (passed) cluster?.remove();
  else if (cluster !== undefined) console.log(`${label}: folder kept for inspection: ${cluster.dir}`);
}
