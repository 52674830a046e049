import type { OpSchema } from '../schema.ts';
import { attention } from './attention.ts';
import { activation, add, mul } from './elementwise.ts';
import { embedding, input, output } from './io.ts';
import { linear } from './linear.ts';
import { rmsNorm } from './rms_norm.ts';
import { rope } from './rope.ts';

/** The ops of a Llama-family decoder, in the order the docs list them. */
export const BUILTIN_OPS: readonly OpSchema[] = [input, embedding, rmsNorm, linear, rope, attention, activation, mul, add, output];
