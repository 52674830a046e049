/** GGUF numbers are little-endian; typed arrays use the host order, so big-endian hosts swap. */
export const HOST_IS_BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

/** Reverse the bytes of each `width`-byte item of `bytes`, in place. */
export function swapInPlace(bytes: Uint8Array, width: number): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (width === 2) buf.swap16();
  else if (width === 4) buf.swap32();
  else if (width === 8) buf.swap64();
}
