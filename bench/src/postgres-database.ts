import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { messageOf, SuiteUnavailableError } from './suite.js';

/** The PostgreSQL server the benchmarks use: `TIMEBOX_POSTGRES_URL`, else the local default. */
export function postgresServerUrl(): string {
  return process.env.TIMEBOX_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}

/** A database made for one benchmark run; `drop()` removes it with everything in it. */
export interface ThrowawayDatabase {
  /** The database's URL (the server's URL with the database's name). */
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

/**
 * Creates a fresh database named `<label>_<random>` on the benchmarks' server, so a run never
 * touches (or migrates) the tables other processes use. Throws `SuiteUnavailableError` when no
 * server answers.
 */
export async function createThrowawayDatabase(label: string): Promise<ThrowawayDatabase> {
  const serverUrl = postgresServerUrl();
  const server = postgres(serverUrl, { max: 1, connect_timeout: 5, onnotice: () => undefined });
  try {
    await server`SELECT 1`;
  } catch (error) {
    await server.end({ timeout: 1 }).catch(() => undefined);
    throw new SuiteUnavailableError(
      `no PostgreSQL answers at ${serverUrl} (${messageOf(error)}): start one on the default port (apt-get install postgresql) or set TIMEBOX_POSTGRES_URL`,
    );
  }
  const name = `${label}_${randomUUID().replace(/-/g, '')}`;
  await server`CREATE DATABASE ${server(name)}`;
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      try {
        await server`DROP DATABASE IF EXISTS ${server(name)} WITH (FORCE)`;
      } finally {
        await server.end();
      }
    },
  };
}
