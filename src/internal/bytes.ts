/** Byte arrays kept beyond the frame they arrived in. */

/**
 * `bytes` itself when it owns most of its buffer (a reassembled message, a frame that had a buffer
 * of its own), else a copy: a small view into a large read chunk would keep the whole chunk alive.
 * No copy of a large payload is ever made, so keeping one costs no time on the event loop. Decoded
 * frames are views into buffers that nothing writes to again, so a kept view never changes.
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  // new Uint8Array(view) copies; Buffer#slice (the decoder's views of a socket chunk are Buffers)
  // would return another view of the same chunk.
  return bytes.byteLength * 2 >= bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}
