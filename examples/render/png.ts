/**
 * A minimal PNG codec on node:zlib (deflate, and crc32 since Node 20.15), so the example needs no
 * dependency: 8-bit RGBA, not interlaced. The encoder writes one IDAT with no row filter (for these
 * fractals the filters gain nothing, and a filter costs a pass over every byte in JavaScript); the
 * decoder reads any 8-bit RGBA, non-interlaced PNG (all five row filters), checking every CRC.
 */
import { promisify } from 'node:util';
import { crc32, deflate, deflateSync, inflateSync } from 'node:zlib';

const deflateAsync = promisify(deflate);

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

/** An image: width × height pixels, 4 bytes (R, G, B, A) each, rows top to bottom. */
export interface RgbaImage {
  width: number;
  height: number;
  rgba: Uint8Array;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  // The CRC covers the type and the data, not the length.
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encode an RGBA image. The bytes depend only on the pixels and `level`: equal images, equal files. */
export function encodePng(image: RgbaImage, level = 6): Buffer {
  return assemble(image, deflateSync(scanlines(image), { level }));
}

/** encodePng with the compression in libuv's thread pool, off the event loop. */
export async function encodePngAsync(image: RgbaImage, level = 6): Promise<Buffer> {
  return assemble(image, await deflateAsync(scanlines(image), { level }));
}

/** The image's rows, each after its filter-type byte (0: none). */
function scanlines(image: RgbaImage): Buffer {
  const { width, height, rgba } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new RangeError(`image size must be positive integers, got ${width}×${height}`);
  if (rgba.length !== width * height * 4) throw new RangeError(`expected ${width * height * 4} RGBA bytes, got ${rgba.length}`);
  const stride = width * 4;
  const raw = Buffer.alloc((stride + 1) * height); // zero-filled: every filter byte is 0
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return raw;
}

function assemble(image: RgbaImage, idat: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(image.width, 0);
  ihdr.writeUInt32BE(image.height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA; compression, filter method and interlace 0
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decode an 8-bit RGBA, non-interlaced PNG; throws on anything else or on a bad CRC. */
export function decodePng(bytes: Uint8Array): RgbaImage {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG: bad signature');
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  let at = 8;
  for (;;) {
    if (at + 12 > buf.length) throw new Error('truncated PNG: no IEND chunk');
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (at + 12 + length > buf.length) throw new Error(`truncated PNG chunk ${type}`);
    const data = buf.subarray(at + 8, at + 8 + length);
    if (crc32(buf.subarray(at + 4, at + 8 + length)) !== buf.readUInt32BE(at + 8 + length)) throw new Error(`bad CRC in chunk ${type}`);
    at += 12 + length;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[9] !== 6 || data[12] !== 0) throw new Error('only 8-bit RGBA non-interlaced PNGs are supported');
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  if (raw.length !== (stride + 1) * height) throw new Error(`bad image data: ${raw.length} bytes for ${width}×${height}`);
  const rgba = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= 4 ? rgba[dst + i - 4]! : 0;
      const b = y > 0 ? rgba[dst - stride + i]! : 0;
      const c = i >= 4 && y > 0 ? rgba[dst - stride + i - 4]! : 0;
      const x = raw[src + i]!;
      const predictor =
        filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : filter === 4 ? paeth(a, b, c) : -1;
      if (predictor < 0) throw new Error(`bad row filter ${filter}`);
      rgba[dst + i] = (x + predictor) & 0xff;
    }
  }
  return { width, height, rgba };
}
