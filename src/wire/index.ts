/** The ATP v1 wire codec: pure, bytes in and typed messages out. */
export * from './constants.js';
export * from './schema.js';
export { bodyBytes, bodySegments, decodeBody, encodeFrame, encodeFrameInto, minBodyBytes, specOf, utf8Length } from './codec.js';
export { FrameDecoder, decodeAll } from './frame-decoder.js';
export type { FragmentInfo, RawFrame } from './frame-decoder.js';
export { MessageFragmenter, encodeFragments } from './fragments.js';
export { FrameEncoder } from './frame-encoder.js';
export { checkPreface, hexSnippet } from './preface.js';
export type { PrefaceCheck } from './preface.js';
export { fromHex, messageFromJson, messageToJson, toHex } from './message-json.js';
export type { JsonValue, MessageJson } from './message-json.js';
