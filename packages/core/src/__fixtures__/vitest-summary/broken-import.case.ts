// fails to load: no test ever exists; it must still count as one failure
import './no-such-module.ts';
import { it } from 'vitest';

it('cannot be collected', () => undefined);
