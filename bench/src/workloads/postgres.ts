import { SuiteUnavailableError, type BackendBench } from '../suite.js';

/** Placeholder until the postgres workloads are written. */
export const postgresBench: BackendBench = {
  name: 'postgres',
  async open() {
    throw new SuiteUnavailableError('the postgres workloads are not written yet');
  },
};
