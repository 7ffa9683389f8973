import type { TestProject } from 'vitest/node';
import { findRedis } from './server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/** Finds (or starts) the Redis every test file uses, once per run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { url, server } = await findRedis();
  project.provide('redisUrl', url);
  return async () => {
    await server?.stop();
  };
}
