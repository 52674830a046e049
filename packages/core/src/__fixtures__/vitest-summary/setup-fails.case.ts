// beforeAll fails: vitest reports both tests as skipped; they must count as failed.
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(() => {
  throw new Error('the reference environment could not be created');
});
describe('needs the environment', () => {
  it('one', () => expect(1).toBe(1));
  it('two', () => expect(2).toBe(2));
});
