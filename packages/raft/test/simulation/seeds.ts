/** The seeds `vitest run` simulates; the broken-variant test searches the same range. */
export const TEST_SEED_COUNT = 2000;
/** The seeds are split into chunks so vitest can spread them over workers and report progress. */
export const TEST_SEED_CHUNK = 250;
