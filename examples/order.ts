/**
 * The order lifecycle example. Runs on the memory backend by default; set TIMEBOX_BACKEND to
 * pick another (see backend.ts).
 *
 *   npx -y pnpm@10.34.8 example
 */
import { openStore } from './backend.js';
import { orderStoreConfig, runOrderDemo } from './order-domain.js';

const store = await openStore(orderStoreConfig);
try {
  await runOrderDemo(store, (line) => console.log(line));
} finally {
  await store.close();
}
