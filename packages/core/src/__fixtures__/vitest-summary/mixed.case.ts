// one pass, one failure, one deliberate skip, and a nested suite whose hook times out
import { beforeAll, describe, expect, it } from 'vitest';

it('passes', () => expect(1).toBe(1));
it('fails', () => expect(1).toBe(2));
it.skip('is skipped on purpose', () => undefined);
describe('slow setup', () => {
  beforeAll(() => new Promise((resolve) => setTimeout(resolve, 2000)), 50);
  it('never runs', () => undefined);
});
