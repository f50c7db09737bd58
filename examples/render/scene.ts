/**
 * The scene: a Mandelbrot or Julia set with smooth (continuous escape-time) colouring and
 * supersampling. `shadePixel` is the whole renderer: a pure function of the scene and the pixel, so
 * any process computing a pixel gets the same bytes (the same code on the same Node binary gives
 * the same IEEE doubles).
 */

/** What to draw. Serialised as JSON into every tile's payload (doubles round-trip exactly). */
export interface Scene {
  fractal: 'mandelbrot' | 'julia';
  /** The whole image, in pixels. */
  width: number;
  height: number;
  /** The view: its centre in the complex plane and its width (the height follows the aspect). */
  centerRe: number;
  centerIm: number;
  span: number;
  maxIterations: number;
  /** Supersampling: samples² rays per pixel, averaged (1 = none). */
  samples: number;
  /** The constant c of a Julia set (unused for the Mandelbrot set). */
  juliaC: [number, number];
}

/** Named scenes for `--scene`. */
export const SCENES = {
  /** A spiral in the Seahorse valley of the Mandelbrot set. */
  seahorse: {
    fractal: 'mandelbrot',
    centerRe: -0.743643887037151,
    centerIm: 0.13182590420533,
    span: 0.0045,
    maxIterations: 1200,
    juliaC: [0, 0],
  },
  /** The whole Mandelbrot set. */
  mandelbrot: { fractal: 'mandelbrot', centerRe: -0.6, centerIm: 0, span: 3.2, maxIterations: 400, juliaC: [0, 0] },
  /** A Julia set of c = -0.8 + 0.156i. */
  julia: { fractal: 'julia', centerRe: 0, centerIm: 0, span: 3.2, maxIterations: 600, juliaC: [-0.8, 0.156] },
} as const satisfies Record<string, Omit<Scene, 'width' | 'height' | 'samples'>>;

/** A scene name. */
export type SceneName = keyof typeof SCENES;

/** The named scene at a size. */
export function sceneOf(name: string, width: number, height: number, samples = 2): Scene {
  const base = (SCENES as Record<string, (typeof SCENES)[SceneName]>)[name];
  if (base === undefined) throw new RangeError(`unknown scene ${JSON.stringify(name)}; the scenes are ${Object.keys(SCENES).join(', ')}`);
  for (const [label, v, max] of [
    ['width', width, 16384],
    ['height', height, 16384],
    ['samples', samples, 8],
  ] as const)
    if (!Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`${label} must be an integer in [1, ${max}], got ${v}`);
  return { ...base, juliaC: [base.juliaC[0], base.juliaC[1]], width, height, samples };
}

const BAILOUT_SQ = 256 * 256; // a large radius makes the smooth count continuous
const TAU = 2 * Math.PI;

/**
 * The continuous escape time of the point (re, im): n + 1 - log2(log|z|) at escape, or -1 inside
 * (never escaped within maxIterations).
 */
export function escapeTime(scene: Scene, re: number, im: number): number {
  let zr: number;
  let zi: number;
  let cr: number;
  let ci: number;
  if (scene.fractal === 'julia') {
    [zr, zi, cr, ci] = [re, im, scene.juliaC[0], scene.juliaC[1]];
  } else {
    // Inside the main cardioid or the period-2 bulb: no need to iterate.
    const q = (re - 0.25) * (re - 0.25) + im * im;
    if (q * (q + (re - 0.25)) <= 0.25 * im * im || (re + 1) * (re + 1) + im * im <= 0.0625) return -1;
    [zr, zi, cr, ci] = [0, 0, re, im];
  }
  for (let n = 0; n < scene.maxIterations; n++) {
    const zr2 = zr * zr;
    const zi2 = zi * zi;
    if (zr2 + zi2 > BAILOUT_SQ) return n + 1 - Math.log2(Math.log(zr2 + zi2) / 2);
    zi = 2 * zr * zi + ci;
    zr = zr2 - zi2 + cr;
  }
  return -1;
}

/** A cosine palette (after Inigo Quilez) over the logarithm of the escape time; the inside is ink. */
function paint(mu: number, sum: { r: number; g: number; b: number }): void {
  if (mu < 0) {
    sum.r += 8;
    sum.g += 6;
    sum.b += 20;
    return;
  }
  const t = Math.log2(mu + 1) * 0.42;
  sum.r += 255 * (0.5 + 0.5 * Math.cos(TAU * (t + 0.0)));
  sum.g += 255 * (0.5 + 0.5 * Math.cos(TAU * (t + 0.12)));
  sum.b += 255 * (0.5 + 0.5 * Math.cos(TAU * (t + 0.27)));
}

/** The colour of pixel (px, py) of the whole image, written as RGBA at `out[at..at+3]`. */
export function shadePixel(scene: Scene, px: number, py: number, out: Uint8Array, at: number): void {
  const { width, height, samples, span } = scene;
  const scale = span / width; // complex units per pixel, the same on both axes
  const sum = { r: 0, g: 0, b: 0 };
  for (let sy = 0; sy < samples; sy++)
    for (let sx = 0; sx < samples; sx++) {
      const re = scene.centerRe + (px + (sx + 0.5) / samples - width / 2) * scale;
      const im = scene.centerIm - (py + (sy + 0.5) / samples - height / 2) * scale;
      paint(escapeTime(scene, re, im), sum);
    }
  const n = samples * samples;
  out[at] = Math.round(sum.r / n);
  out[at + 1] = Math.round(sum.g / n);
  out[at + 2] = Math.round(sum.b / n);
  out[at + 3] = 255;
}
