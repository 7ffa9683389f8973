import type { TestProject } from 'vitest/node';
import { findServer } from './server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

/** Finds (or starts) one server for the whole run and hands its URL to every test file. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await findServer();
  console.log(`@timebox/postgres tests: PostgreSQL from ${server.source} (${server.url})`);
  project.provide('postgresUrl', server.url);
  return () => server.stop();
}
