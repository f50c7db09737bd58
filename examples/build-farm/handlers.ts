/**
 * The worker side of the farm: `build.compile`, `build.link` and `build.test`, each in a fresh
 * temporary directory with the machine's C compiler (`cc`). Loaded by `atp worker --module
 * dist/examples/build-farm/handlers.js`. A compiler error or a failed test is deterministic: it
 * fails the artifact without another attempt (NonRetryableError); a cancel kills the compiler.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { HandlerContext, LeasedArtifact } from '../../src/worker/worker.js';
import { NonRetryableError } from '../../src/worker/worker.js';
import type { CompileJob, LinkJob, TestJob, TestReport } from './steps.js';
import { BuildKind, objectName } from './steps.js';

const run = promisify(execFile);
const dec = new TextDecoder();
const parse = <T>(artifact: LeasedArtifact): T => JSON.parse(dec.decode(artifact.payload)) as T;

/** `cc --version`'s first line: the payload names the compiler it was planned for. */
export async function toolchainId(): Promise<string> {
  const { stdout } = await run('cc', ['--version']);
  return stdout.split('\n')[0]!.trim();
}

let ownToolchain: Promise<string> | undefined;

async function checkToolchain(wanted: string): Promise<void> {
  ownToolchain ??= toolchainId();
  const own = await ownToolchain;
  // Retryable: another worker may have the compiler the build was planned with.
  if (own !== wanted) throw new Error(`this worker has ${JSON.stringify(own)}, the step wants ${JSON.stringify(wanted)}`);
}

/** Run in a fresh temporary directory, removed afterwards. */
async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'atp-build-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function writeTree(root: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [path, data] of Object.entries(files)) {
    if (path.split('/').includes('..') || path.startsWith('/')) throw new NonRetryableError(`refusing path ${path}`);
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), data);
  }
}

/** Run the compiler; its diagnostics become the error of a deterministic failure. */
async function cc(args: string[], cwd: string, signal: AbortSignal): Promise<void> {
  try {
    // LC_ALL=C: diagnostics (kept in the failure) do not depend on the worker's locale.
    await run('cc', args, { cwd, signal, timeout: 120_000, env: { ...process.env, LC_ALL: 'C' } });
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string; message: string };
    if (typeof e.code === 'number') throw new NonRetryableError(`cc ${args.join(' ')} failed:\n${e.stderr ?? e.message}`);
    throw err;
  }
}

/** Compile one source to an object file; the result is the object's bytes. */
async function compile(artifact: LeasedArtifact, ctx: HandlerContext): Promise<Uint8Array> {
  const job = parse<CompileJob>(artifact);
  await checkToolchain(job.toolchain);
  return inTempDir(async (dir) => {
    await writeTree(dir, { ...job.headers, [job.source.path]: job.source.text });
    const object = objectName(job.source.path);
    await cc([...job.flags, '-c', job.source.path, '-o', object], dir, ctx.signal);
    return new Uint8Array(await readFile(join(dir, object)));
  });
}

/** Link objects into an executable; the result is its bytes. */
async function link(artifact: LeasedArtifact, ctx: HandlerContext): Promise<Uint8Array> {
  const job = parse<LinkJob>(artifact);
  await checkToolchain(job.toolchain);
  return inTempDir(async (dir) => {
    await writeTree(dir, Object.fromEntries(job.objects.map((o) => [o.name, Buffer.from(o.data, 'base64')])));
    await cc([...job.flags, '-o', job.output, ...job.objects.map((o) => o.name)], dir, ctx.signal);
    return new Uint8Array(await readFile(join(dir, job.output)));
  });
}

/** Run the program and compare its output; a wrong output fails the artifact. */
async function test(artifact: LeasedArtifact, ctx: HandlerContext): Promise<string> {
  const job = parse<TestJob>(artifact);
  return inTempDir(async (dir) => {
    const exe = join(dir, job.name);
    await writeFile(exe, Buffer.from(job.program, 'base64'));
    await chmod(exe, 0o755);
    let stdout: string;
    try {
      ({ stdout } = await run(exe, [], { cwd: dir, signal: ctx.signal, timeout: 30_000 }));
    } catch (err) {
      const e = err as { code?: unknown; stdout?: string; message: string };
      if (typeof e.code === 'number')
        throw new NonRetryableError(`${job.name} exited with status ${e.code}; it printed:\n${e.stdout ?? ''}`);
      throw err;
    }
    if (stdout !== job.expectedStdout) throw new NonRetryableError(`${job.name} printed:\n${stdout}\nexpected:\n${job.expectedStdout}`);
    return JSON.stringify({ passed: true, stdout } satisfies TestReport);
  });
}

/** The handler table `atp worker --module` loads. */
export const handlers = {
  [BuildKind.COMPILE]: compile,
  [BuildKind.LINK]: link,
  [BuildKind.TEST]: test,
};
