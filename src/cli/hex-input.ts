/**
 * Input for `atp dump`: tells a binary capture from hex text, and reads hex text in the forms people
 * paste: plain hex (with whitespace, commas, `0x` prefixes and `#` comments), `xxd` output and
 * `hexdump -C` output (offsets, ASCII columns and `*` lines for repeated rows).
 */

/** A hex text that cannot be read, with the line it failed on. */
export class HexInputError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'HexInputError';
  }
}

/** True when the bytes are not all printable ASCII or whitespace: a binary capture, not hex text. */
export function isBinary(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0x09 && b !== 0x0a && b !== 0x0d && (b < 0x20 || b > 0x7e)) return true;
  return false;
}

const XXD_LINE = /^([0-9a-fA-F]+):\s(.*)$/;
const HEXDUMP_C_LINE = /^([0-9a-fA-F]{8})\s\s[0-9a-fA-F]{2}\s.*\|.*\|\s*$/;
const OFFSET_ONLY = /^([0-9a-fA-F]{7,})\s*$/;

type Format = 'xxd' | 'hexdump-c' | 'plain';

function detectFormat(lines: readonly string[]): Format {
  if (lines.some((l) => XXD_LINE.test(l))) return 'xxd';
  if (lines.some((l) => HEXDUMP_C_LINE.test(l))) return 'hexdump-c';
  return 'plain';
}

const HINT = 'accepted: plain hex, xxd or hexdump -C output; add --raw for a binary capture';

function hexPairs(line: number, tokens: readonly string[], out: number[] = []): number[] {
  for (const t of tokens) {
    if (t.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(t)) throw new HexInputError(line, `${JSON.stringify(t)} is not hex bytes (${HINT})`);
    for (let i = 0; i < t.length; i += 2) out.push(parseInt(t.slice(i, i + 2), 16));
  }
  return out;
}

/** Read hex text into bytes; throws HexInputError naming the line that is not hex. */
export function parseHexText(text: string): Uint8Array {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const format = detectFormat(lines);
  const out: number[] = [];
  // Offset formats: `*` stands for repeats of the previous row up to the next row's offset.
  let previousRow: number[] = [];
  let squeezed = false;
  lines.forEach((raw, k) => {
    const n = k + 1;
    const line = raw.trim();
    if (line === '') return;
    if (format === 'plain') {
      const tokens = line
        .replace(/#.*$/, '')
        .split(/[\s,]+/)
        .filter((t) => t !== '')
        // `0x7` is one byte; bare tokens are whole bytes (an even number of digits).
        .map((t) => (/^0[xX][0-9a-fA-F]$/.test(t) ? `0${t.slice(2)}` : t.replace(/^0[xX]/, '')));
      hexPairs(n, tokens, out);
      return;
    }
    if (line === '*') {
      squeezed = true;
      return;
    }
    let offset: number;
    let row: number[];
    const xxd = format === 'xxd' ? XXD_LINE.exec(line) : null;
    const only = OFFSET_ONLY.exec(line);
    if (xxd) {
      offset = parseInt(xxd[1]!, 16);
      // The hex groups end where the ASCII column begins, after two or more spaces.
      row = hexPairs(
        n,
        (xxd[2]!.split(/\s{2,}/)[0] ?? '').split(/\s+/).filter((t) => t !== ''),
      );
    } else if (only) {
      offset = parseInt(only[1]!, 16);
      row = [];
    } else if (format === 'hexdump-c' && /^[0-9a-fA-F]{8}\s/.test(line)) {
      offset = parseInt(line.slice(0, 8), 16);
      const rest = line.slice(8);
      const bar = rest.indexOf('|');
      row = hexPairs(
        n,
        (bar < 0 ? rest : rest.slice(0, bar)).split(/\s+/).filter((t) => t !== ''),
      );
    } else {
      throw new HexInputError(
        n,
        `expected an ${format === 'xxd' ? 'xxd' : 'hexdump -C'} row "OFFSET: HEX  ASCII", got ${JSON.stringify(line.slice(0, 40))}`,
      );
    }
    if (squeezed) {
      if (previousRow.length === 0) throw new HexInputError(n, '"*" follows no row to repeat');
      while (out.length < offset) for (let i = 0; i < previousRow.length && out.length < offset; i++) out.push(previousRow[i]!);
      squeezed = false;
    }
    if (offset !== out.length)
      throw new HexInputError(n, `the row says offset 0x${offset.toString(16)}, but ${out.length} bytes were read before it`);
    for (const b of row) out.push(b);
    if (row.length > 0) previousRow = row;
  });
  if (squeezed) throw new HexInputError(lines.length, 'the text ends with "*": the final offset row is missing');
  return Uint8Array.from(out);
}
