import { SuiteUnavailableError, type BackendBench } from '../suite.js';

/** Placeholder until the redis workloads are written. */
export const redisBench: BackendBench = {
  name: 'redis',
  async open() {
    throw new SuiteUnavailableError('the redis workloads are not written yet');
  },
};
