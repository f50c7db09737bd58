/**
 * The farm's output store: immutable files named by the SHA-256 of their content
 * (out/store/<digest>), in the spirit of /nix/store. A file is written once (to a temporary name,
 * then renamed) and made read-only; writing the same content again is a no-op.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** SHA-256 of bytes, hex. */
export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A directory of content-addressed, read-only files. */
export class ContentStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  /** The path of the file holding `digest`. */
  path(digest: string): string {
    if (!/^[0-9a-f]{64}$/.test(digest)) throw new RangeError(`not a SHA-256 digest: ${digest}`);
    return join(this.dir, digest);
  }

  /** Store bytes (mode 0444, or 0555 for an executable); returns their digest and whether they were new. */
  put(bytes: Uint8Array, executable = false): { digest: string; added: boolean } {
    const digest = sha256Hex(bytes);
    const path = this.path(digest);
    if (existsSync(path)) return { digest, added: false };
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    chmodSync(tmp, executable ? 0o555 : 0o444);
    renameSync(tmp, path);
    return { digest, added: true };
  }

  /** The bytes of `digest`, checked against it. */
  get(digest: string): Uint8Array {
    const bytes = new Uint8Array(readFileSync(this.path(digest)));
    if (sha256Hex(bytes) !== digest) throw new Error(`store entry ${digest} is corrupt`);
    return bytes;
  }

  /** How many entries the store holds. */
  size(): number {
    return readdirSync(this.dir).filter((f) => /^[0-9a-f]{64}$/.test(f)).length;
  }
}
