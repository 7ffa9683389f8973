import { describeConformance } from '@timebox/core/conformance';
import { clusterTarget, SINGLE_MEMBER_TIMINGS } from './conformance-support.js';

describeConformance(clusterTarget(1, SINGLE_MEMBER_TIMINGS));
