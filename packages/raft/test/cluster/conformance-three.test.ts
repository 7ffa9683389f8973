import { describeConformance } from '@timebox/core/conformance';
import { clusterTarget } from './conformance-support.js';

describeConformance(clusterTarget(3));
