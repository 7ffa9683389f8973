// Runs the conformance suite on the broken variant named by TIMEBOX_BROKEN_VARIANT. Not part of
// the normal run (it must fail); broken.test.ts starts it once per variant.
import { describeConformance } from '@timebox/core/conformance';
import { BROKEN_VARIANTS, brokenNamespace, type BrokenVariant } from './variants.js';

const variant = process.env.TIMEBOX_BROKEN_VARIANT as BrokenVariant;
if (!(variant in BROKEN_VARIANTS)) throw new Error(`set TIMEBOX_BROKEN_VARIANT to one of ${Object.keys(BROKEN_VARIANTS).join(', ')}`);

describeConformance({
  name: `broken memory (${variant})`,
  capabilities: { archive: true, archiveRedeliveryMs: 200, hub: true, readSide: true },
  namespace: () => brokenNamespace(variant, 200),
});
