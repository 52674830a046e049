/** Counter sites of the runtime's sparsity report (docs/gguf-sparse.md §5), from the contract table. */
import { SPARSE_GGUF } from './contract.ts';
import { type Method, METHOD_LAYOUTS } from './methods.ts';
import { PROJECTIONS, type Projection } from './projections.ts';

/** `ffn_gate_act`: the gate after its activation. */
export const GATE_ACT_SITE = SPARSE_GGUF.sites.gateAct.name;

/** `<proj>_in`: the input of a projection. */
export function inputSite(proj: Projection): string {
  return SPARSE_GGUF.sites.projectionInput.name.replace('%s', proj);
}

/** The sites of one layer in the runtime's order (site id = index): each projection's input, then the gate. */
export const SITES: readonly string[] = [...PROJECTIONS.map(inputSite), GATE_ACT_SITE];

/** The sites a method thresholds (the gate first, then the thresholded inputs in projection order). */
export function thresholdedSites(method: Method): string[] {
  const layout = METHOD_LAYOUTS[method];
  return [...(layout.gate ? [GATE_ACT_SITE] : []), ...PROJECTIONS.filter((p) => layout.inputs.includes(p)).map(inputSite)];
}
