/** On-disk constants of the GGUF container (see ggml's gguf.h). */

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
/** Data alignment when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_ALIGNMENT_KEY = 'general.alignment';
/** v1 used 32-bit counts (unsupported, as in ggml); v2 and v3 share the little-endian layout. */
export const SUPPORTED_GGUF_VERSIONS: readonly number[] = [2, 3];
export const GGUF_WRITE_VERSION = 3;
