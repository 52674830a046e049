/** Test helpers for packages that write IR passes (imports vitest: test code only). */
export { runFixtures, type FixtureCase, type FixtureOptions, type FixtureSuite } from './fixtures.ts';
export { mulberry32, randomWeights } from './random.ts';
