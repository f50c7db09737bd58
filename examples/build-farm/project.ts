/**
 * The project the farm builds: a tiny C library (a header and four sources), a test program that
 * exercises it, and the output that program must print. Written into the work directory on the
 * first run and read from there on every run, so that a person (or `--touch`) can edit it between
 * runs.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** Library sources (compiled and linked into the test program). */
const LIBRARY: Record<string, string> = {
  'include/tiny.h': `#ifndef TINY_H
#define TINY_H
#include <stddef.h>
#include <stdint.h>

unsigned tiny_gcd(unsigned a, unsigned b);
size_t tiny_count_primes(unsigned below);
uint32_t tiny_crc32(const void *data, size_t len);
void tiny_reverse(char *s);

#endif
`,
  'src/gcd.c': `#include "tiny.h"

const char tiny_gcd_revision[] = "r0";

unsigned tiny_gcd(unsigned a, unsigned b) {
  while (b != 0) {
    unsigned t = a % b;
    a = b;
    b = t;
  }
  return a;
}
`,
  'src/primes.c': `#include <stdlib.h>
#include <string.h>
#include "tiny.h"

const char tiny_primes_revision[] = "r0";

size_t tiny_count_primes(unsigned below) {
  if (below < 3) return 0;
  unsigned char *composite = calloc(below, 1);
  if (composite == NULL) return 0;
  size_t count = 0;
  for (unsigned n = 2; n < below; n++) {
    if (composite[n]) continue;
    count++;
    for (unsigned long m = (unsigned long)n * n; m < below; m += n) composite[m] = 1;
  }
  free(composite);
  return count;
}
`,
  'src/crc32.c': `#include "tiny.h"

const char tiny_crc32_revision[] = "r0";

uint32_t tiny_crc32(const void *data, size_t len) {
  const unsigned char *p = data;
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < len; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}
`,
  'src/reverse.c': `#include <string.h>
#include "tiny.h"

const char tiny_reverse_revision[] = "r0";

void tiny_reverse(char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i < n / 2; i++) {
    char t = s[i];
    s[i] = s[n - 1 - i];
    s[n - 1 - i] = t;
  }
}
`,
  'src/main.c': `#include <stdio.h>
#include <string.h>
#include "tiny.h"

int main(void) {
  const char *fox = "The quick brown fox jumps over the lazy dog";
  char word[] = "stressed";
  printf("gcd(1071, 462) = %u\\n", tiny_gcd(1071, 462));
  printf("primes below 1000 = %zu\\n", tiny_count_primes(1000));
  printf("crc32(\\"%s\\") = %08x\\n", fox, (unsigned)tiny_crc32(fox, strlen(fox)));
  tiny_reverse(word);
  printf("reverse(\\"stressed\\") = %s\\n", word);
  return 0;
}
`,
};

/** What the test program must print. */
export const EXPECTED_OUTPUT = `gcd(1071, 462) = 21
primes below 1000 = 168
crc32("The quick brown fox jumps over the lazy dog") = 414fa339
reverse("stressed") = desserts
`;

/** The project as read from the work directory. */
export interface Project {
  /** Header files by path (`include/...`), every one given to every compile. */
  headers: Record<string, string>;
  /** C sources by path (`src/...`), in name order: one compile each. */
  sources: Record<string, string>;
}

/** Write the project into `workDir` unless it is already there (an edited project is kept). */
export function ensureProject(workDir: string): void {
  if (existsSync(join(workDir, 'src'))) return;
  for (const [path, text] of Object.entries(LIBRARY)) {
    mkdirSync(dirname(join(workDir, path)), { recursive: true });
    writeFileSync(join(workDir, path), text);
  }
}

/** Read every header and source of the project. */
export function readProject(workDir: string): Project {
  const read = (dir: string, ext: string) =>
    Object.fromEntries(
      readdirSync(join(workDir, dir))
        .filter((f) => f.endsWith(ext))
        .sort()
        .map((f) => [`${dir}/${f}`, readFileSync(join(workDir, dir, f), 'utf8')]),
    );
  return { headers: read('include', '.h'), sources: read('src', '.c') };
}

/**
 * Change one file of the project: bump its revision string (`"r0"` → `"r1"`: the object file
 * changes, so the link and the test rerun; the output does not change), or with `comment` only
 * append a comment (the compile reruns and yields the same object: nothing after it reruns).
 * `file` is a path in the work directory or a bare file name (`gcd.c`). Returns the path changed.
 */
export function touchFile(workDir: string, file: string, how: 'code' | 'comment'): string {
  const candidates = [join(workDir, file), join(workDir, 'src', file), join(workDir, 'include', file)];
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) throw new Error(`--touch: no file ${file} in ${workDir} (try src/gcd.c)`);
  let text = readFileSync(path, 'utf8');
  const revision = /(_revision\[\] = "r)(\d+)(")/;
  if (how === 'code' && revision.test(text))
    text = text.replace(revision, (_m, a: string, n: string, b: string) => `${a}${Number(n) + 1}${b}`);
  else text += `/* touched ${new Date().toISOString()} */\n`;
  writeFileSync(path, text);
  return relative(workDir, path);
}
