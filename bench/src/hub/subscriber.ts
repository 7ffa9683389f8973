// The other process of the delivery-latency benchmark: subscribes, notes when each event reaches
// its handler, and answers the writer's acknowledgement times with the latencies. Started by
// latency.ts through `fork`, never on its own.
import { now, openHubStore, type HubTarget } from './stores.js';

const target = JSON.parse(process.argv[2] ?? '') as HubTarget;
const send = (message: unknown) => (process.send as (message: unknown) => void)(message);
const store = openHubStore(target);
await store.ready();
/** Handler times by "aggregate#sequence", and acknowledgement times not yet matched. */
const handled = new Map<string, number>();
const acked = new Map<string, number>();
const latencies: number[] = [];
const match = (key: string) => {
  const at = handled.get(key);
  const ack = acked.get(key);
  if (at === undefined || ack === undefined) return;
  latencies.push(at - ack);
  handled.delete(key);
  acked.delete(key);
};
await store.subscribe((event) => {
  const key = `${event.aggregateId.join('/')}#${event.sequence}`;
  handled.set(key, now());
  match(key);
});
process.on('message', (message: { ack?: [string, number][]; done?: true }) => {
  for (const [key, at] of message.ack ?? []) {
    acked.set(key, at);
    match(key);
  }
  if (message.done) {
    const wait = setInterval(() => {
      if (acked.size > 0) return;
      clearInterval(wait);
      send({ latencies });
      void store.close().then(() => process.exit(0));
    }, 20);
  }
});
send({ ready: true });
