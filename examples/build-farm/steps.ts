/**
 * The build graph: one `build.compile` per source, a `build.link` of every object into the test
 * program, and a `build.test` that runs it. A step's payload embeds the content of everything that
 * goes into it (sources, headers, flags, the compiler's identity, the input objects' bytes), so
 * its artifact id, the digest of the payload, names exactly that build: identical inputs, same id,
 * and ATP answers a finished one from its store (memoization).
 */
import type { Project } from './project.js';

/** The artifact kinds of the farm. */
export const BuildKind = {
  COMPILE: 'build.compile',
  LINK: 'build.link',
  TEST: 'build.test',
} as const;
/** An artifact kind of the farm. */
export type BuildKind = (typeof BuildKind)[keyof typeof BuildKind];

/** `build.compile`: one C source to an object file (the result: the object's bytes). */
export interface CompileJob {
  source: { path: string; text: string };
  headers: Record<string, string>;
  flags: string[];
  /** `cc --version`'s first line: a different compiler is a different build. */
  toolchain: string;
}

/** `build.link`: objects to an executable (the result: its bytes). */
export interface LinkJob {
  output: string;
  /** In link order; `data` is base64. */
  objects: Array<{ name: string; data: string }>;
  flags: string[];
  toolchain: string;
}

/** `build.test`: run a program and compare what it prints (the result: a TestReport as JSON). */
export interface TestJob {
  name: string;
  /** The executable, base64. */
  program: string;
  expectedStdout: string;
}

/** The result of a `build.test`. */
export interface TestReport {
  passed: boolean;
  stdout: string;
}

/** One node of the graph. */
export interface BuildStep {
  /** Unique in the graph: the object, the program, or "test <program>". */
  name: string;
  kind: BuildKind;
  /** Names of the steps whose results this one takes as inputs. */
  deps: string[];
  /** The payload, once every dependency's result is known. */
  payload(inputs: ReadonlyMap<string, Uint8Array>): Uint8Array;
}

/** Flags of every compile. */
export const CFLAGS = ['-std=c11', '-O2', '-Wall', '-Wextra', '-Werror', '-Iinclude'];
/** The test program's name. */
export const PROGRAM = 'tinytest';

const enc = new TextEncoder();
const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));
const b64 = (bytes: Uint8Array | undefined, name: string): string => {
  if (bytes === undefined) throw new Error(`input ${name} is not built`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
};

/** The object file a source compiles to (`src/gcd.c` → `gcd.o`). */
export const objectName = (sourcePath: string): string => `${sourcePath.replace(/^.*\//, '').replace(/\.c$/, '')}.o`;

/** The graph of a project, in a dependency order (every step after its dependencies). */
export function buildGraph(project: Project, toolchain: string, expectedStdout: string): BuildStep[] {
  const compiles: BuildStep[] = Object.entries(project.sources).map(([path, text]) => ({
    name: objectName(path),
    kind: BuildKind.COMPILE,
    deps: [],
    // Key order is fixed by construction and headers come sorted: the same inputs, the same bytes.
    payload: () => json({ source: { path, text }, headers: project.headers, flags: CFLAGS, toolchain } satisfies CompileJob),
  }));
  const objects = compiles.map((c) => c.name);
  const link: BuildStep = {
    name: PROGRAM,
    kind: BuildKind.LINK,
    deps: objects,
    payload: (inputs) =>
      json({
        output: PROGRAM,
        objects: objects.map((name) => ({ name, data: b64(inputs.get(name), name) })),
        flags: [],
        toolchain,
      } satisfies LinkJob),
  };
  const test: BuildStep = {
    name: `test ${PROGRAM}`,
    kind: BuildKind.TEST,
    deps: [PROGRAM],
    payload: (inputs) => json({ name: PROGRAM, program: b64(inputs.get(PROGRAM), PROGRAM), expectedStdout } satisfies TestJob),
  };
  return [...compiles, link, test];
}
