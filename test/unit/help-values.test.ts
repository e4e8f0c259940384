import { describe, expect, it } from 'vitest';
import { LDTARBALL_DEFAULT_LIMITS, PACKABLE_FORMAT_NAMES, RECIPE_ARCH_NAMES, RECIPE_NAMES } from '../../src/cli/help-values.js';
import { RECIPE_ARCHES, RECIPES } from '../../src/images/image-builder.js';
import { DEFAULT_LIMITS } from '../../src/ldtarball/plan.js';
import { PACKABLE_FORMATS } from '../../src/packaging/packers.js';

/** The help text's copies of values from heavy modules (kept apart so --help loads none) say what those modules do. */
describe('help values', () => {
  it('the formats are the packers, in their order', () => expect(PACKABLE_FORMAT_NAMES).toEqual(PACKABLE_FORMATS()));
  it("the recipes and their arches are the image builder's", () => {
    expect(RECIPE_NAMES).toEqual(RECIPES);
    expect(RECIPE_ARCH_NAMES).toEqual(RECIPE_ARCHES);
  });
  it("the ldtarball limits are the planner's defaults", () => expect(LDTARBALL_DEFAULT_LIMITS).toEqual(DEFAULT_LIMITS));
});
