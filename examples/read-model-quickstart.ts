/**
 * Read models and projections in one page: a durable projection keeps "balance per owner" up to
 * date from every event in the store's log, resumes from its checkpoint after a restart, and
 * rebuilds on demand. The README's "Read models and projections" section shows this file.
 *
 *   npx tsx read-model-quickstart.ts
 */
import { createExecutor, makeDispatcher } from '@timebox/core';
import { createMemoryStore } from '@timebox/memory';

type AccountEvents = {
  Opened: { owner: string };
  Deposited: { amountCents: number };
  Withdrawn: { amountCents: number };
};

const store = createMemoryStore<AccountEvents>();
const accounts = createExecutor(store, {
  initialState: () => ({ balanceCents: 0 }),
  appliers: {
    Deposited: (state, { amountCents }) => ({ balanceCents: state.balanceCents + amountCents }),
    Withdrawn: (state, { amountCents }) => ({ balanceCents: state.balanceCents - amountCents }),
  },
});
await accounts.exec(['account', '1'], (_state, account) => {
  account.raise('Opened', { owner: 'ada' });
  account.raise('Deposited', { amountCents: 10_000 });
});

// The read model: in a real service, a table. Handlers must be idempotent (delivery is
// at-least-once), so each account remembers the last sequence it applied.
const owners = new Map<string, string>();
const balances = new Map<string, { cents: number; upTo: number }>();
const apply = (key: string, sequence: number, change: number) => {
  const row = balances.get(key) ?? { cents: 0, upTo: -1 };
  if (sequence > row.upTo) balances.set(key, { cents: row.cents + change, upTo: sequence });
};

// A named, durable projection: every event in log order, then every new one.
const projection = store.project(
  'balances',
  makeDispatcher<AccountEvents>({
    Opened: ({ owner }, event) => void owners.set(event.aggregateId.join('/'), owner),
    Deposited: ({ amountCents }, event) => apply(event.aggregateId.join('/'), event.sequence, amountCents),
    Withdrawn: ({ amountCents }, event) => apply(event.aggregateId.join('/'), event.sequence, -amountCents),
  }),
);
await projection.caughtUp();

await accounts.exec(['account', '1'], (_state, account) => account.raise('Withdrawn', { amountCents: 2_500 }));
await projection.caughtUp();
console.log(owners.get('account/1'), balances.get('account/1')?.cents); // ada 7500

const status = await store.projectionStatus('balances');
console.log(status.lag, status.holder === projection.runnerId); // 0 true

// The whole log, page by page, from any checkpoint.
const page = await store.readAll({ limit: 2 });
console.log(
  page.events.map((event) => `${event.type}@${event.position}`),
  page.end,
); // [ 'Opened@1', 'Deposited@2' ] false

await projection.stop();
await store.close();
