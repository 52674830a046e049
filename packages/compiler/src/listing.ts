/**
 * What the compiler can do, for listings (`chess transform --list-passes`):
 * its stages with the passes each runs, every registered pass, every method.
 */
import { PASSES, methodLayout, methodNames } from '@chess/pass-chess';
import { STAGES } from './events.ts';

export interface CompilerListing {
  readonly stages: ReadonlyArray<{ readonly name: string; readonly summary: string; readonly passes: readonly string[] }>;
  readonly passes: ReadonlyArray<{ readonly name: string; readonly summary: string }>;
  readonly methods: ReadonlyArray<{ readonly name: string; readonly summary: string }>;
}

export function compilerListing(): CompilerListing {
  return {
    stages: STAGES,
    passes: PASSES.map(({ name, summary }) => ({ name, summary })),
    methods: methodNames().map((name) => ({ name, summary: methodLayout(name).summary })),
  };
}
