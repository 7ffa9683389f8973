export { WriteAheadLog, WAL_DEFAULTS, type WalOptions, type WalStats } from './write-ahead-log.js';
export { WalCorruptionError, WalUnavailableError } from './errors.js';
