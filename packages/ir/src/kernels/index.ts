import type { Kernel } from '../interpreter.ts';
import { attention } from './attention.ts';
import { activation, add, mul } from './elementwise.ts';
import { embedding, input } from './io.ts';
import { linear } from './linear.ts';
import { rmsNorm } from './rms_norm.ts';
import { rope } from './rope.ts';

/** Reference kernels of the builtin ops (`output` needs none: the interpreter reads its operand). */
export const BUILTIN_KERNELS: Readonly<Record<string, Kernel>> = {
  input,
  embedding,
  rms_norm: rmsNorm,
  linear,
  rope,
  attention,
  activation,
  mul,
  add,
};
