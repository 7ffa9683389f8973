import { afterEach } from 'vitest';
import type { Backend, BackendCapabilities } from '../backend.js';
import type { Config } from '../config.js';
import type { EventMap } from '../event.js';
import { createStore, type Store } from '../store.js';

/** One isolated slice of a backend's storage (a key prefix, a schema, a data folder). */
export interface ConformanceNamespace {
  /**
   * Opens a new backend over this namespace, as another process would: data written through one
   * connection must be visible through every other.
   */
  connect(): Backend | Promise<Backend>;
  /** Deletes what the namespace holds. Called after each test, once its stores are closed. */
  dispose?(): Promise<void>;
}

/** What the conformance suite needs to know about a backend under test. */
export interface ConformanceTarget {
  /** Names the suite in the test report. */
  readonly name: string;
  readonly capabilities: ConformanceCapabilities;
  /** Returns a fresh, isolated namespace; each test gets its own. */
  namespace(): ConformanceNamespace | Promise<ConformanceNamespace>;
  /** Per-test timeout in ms. Default 20000. */
  readonly timeoutMs?: number;
  /** Concurrency of the "many writers" cases. Default 50. */
  readonly writers?: number;
}

export interface ConformanceCapabilities extends BackendCapabilities {
  /**
   * How long (ms) after a consumer took an archive record without acknowledging it the record is
   * offered to another consumer, as configured for the namespaces under test. Set it (small, e.g.
   * 200) to run the redelivery case; leave it out to skip that case.
   */
  readonly archiveRedeliveryMs?: number;
  /**
   * The backend implements `watch`, so `store.subscribe` delivers appended events. Runs the event
   * hub cases; without it the suite only checks that `subscribe` rejects with
   * `HubUnavailableError`.
   */
  readonly hub?: boolean;
}

/** Opens stores for one test and closes and disposes everything the test opened. */
export class Harness {
  readonly #opened: Store[] = [];
  readonly #namespaces: ConformanceNamespace[] = [];

  constructor(readonly target: ConformanceTarget) {
    afterEach(async () => {
      const stores = this.#opened.splice(0);
      await Promise.all(stores.map((store) => store.close().catch(() => undefined)));
      const namespaces = this.#namespaces.splice(0);
      await Promise.all(namespaces.map((namespace) => Promise.resolve(namespace.dispose?.())));
    });
  }

  /** A fresh namespace, disposed after the test. */
  async namespace(): Promise<ConformanceNamespace> {
    const namespace = await this.target.namespace();
    this.#namespaces.push(namespace);
    return namespace;
  }

  /** A store over a new connection to `namespace` (default: a fresh namespace), closed after the test. */
  async store<M extends EventMap = EventMap>(config: Config<M> = {}, namespace?: ConformanceNamespace): Promise<Store<M>> {
    const ns = namespace ?? (await this.namespace());
    const store = createStore<M>(await ns.connect(), config);
    this.#opened.push(store as unknown as Store);
    await store.ready();
    return store;
  }

  /** `count` stores over separate connections to one fresh namespace, as separate processes. */
  async stores<M extends EventMap = EventMap>(count: number, config: Config<M> = {}): Promise<Store<M>[]> {
    const namespace = await this.namespace();
    const stores: Store<M>[] = [];
    for (let i = 0; i < count; i++) stores.push(await this.store(config, namespace));
    return stores;
  }
}
