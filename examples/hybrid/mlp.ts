/**
 * A small multilayer perceptron on Float32Arrays: dense layers with ReLU between them and tanh at
 * the output, trained by backpropagation on mean squared error with Adam. No library.
 *
 * The forward pass is one function used both when training and when serving, and it rounds to
 * float32 at the same points (each neuron's sum is accumulated in a double and stored in a
 * Float32Array), so the same weights on the same inputs give the same bits in every process.
 */
import type { Random } from '../shared/random.js';

/** One dense layer: out[j] = bias[j] + sum_i weights[j * inputs + i] * in[i]. */
export interface Layer {
  inputs: number;
  outputs: number;
  weights: Float32Array;
  bias: Float32Array;
}

/** The JSON form of a model (examples/hybrid/out/model.json). */
export interface MlpJson {
  format: 'atp-example-hybrid-mlp/1';
  sizes: number[];
  layers: Array<{ weights: number[]; bias: number[] }>;
  /** Free-form facts about the training run. */
  meta?: Record<string, unknown>;
}

/** Adam's state for one parameter array. */
interface Moments {
  m: Float32Array;
  v: Float32Array;
}

/** Options of a training step. */
export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** A multilayer perceptron. */
export class Mlp {
  readonly layers: Layer[];
  #moments: Moments[][] | undefined;
  #adamSteps = 0;

  constructor(layers: Layer[]) {
    for (let l = 1; l < layers.length; l++)
      if (layers[l]!.inputs !== layers[l - 1]!.outputs)
        throw new RangeError(`layer ${l} takes ${layers[l]!.inputs} inputs but layer ${l - 1} gives ${layers[l - 1]!.outputs}`);
    this.layers = layers;
  }

  /** A network of the given layer sizes ([inputs, hidden..., outputs]) with He-initialised weights. */
  static create(sizes: readonly number[], random: Random): Mlp {
    if (sizes.length < 2) throw new RangeError('an MLP needs at least an input and an output size');
    const layers: Layer[] = [];
    for (let l = 0; l + 1 < sizes.length; l++) {
      const inputs = sizes[l]!;
      const outputs = sizes[l + 1]!;
      const weights = new Float32Array(inputs * outputs);
      const scale = Math.sqrt(2 / inputs);
      for (let i = 0; i < weights.length; i++) weights[i] = gaussian(random) * scale;
      layers.push({ inputs, outputs, weights, bias: new Float32Array(outputs) });
    }
    return new Mlp(layers);
  }

  /** Layer sizes, inputs first. */
  get sizes(): number[] {
    return [this.layers[0]!.inputs, ...this.layers.map((l) => l.outputs)];
  }

  /** Parameters in all. */
  get parameterCount(): number {
    return this.layers.reduce((n, l) => n + l.weights.length + l.bias.length, 0);
  }

  /**
   * Outputs for `count` inputs laid out one after the other in `input`; returns count × outputs
   * values. Keeps each layer's activations in `trace` when given (for backpropagation).
   */
  forward(input: Float32Array, count: number, trace?: Float32Array[]): Float32Array {
    let x = input;
    trace?.push(x);
    for (let l = 0; l < this.layers.length; l++) {
      const { inputs, outputs, weights, bias } = this.layers[l]!;
      const last = l === this.layers.length - 1;
      const y = new Float32Array(count * outputs);
      for (let s = 0; s < count; s++) {
        const xo = s * inputs;
        for (let j = 0; j < outputs; j++) {
          let sum = bias[j]!;
          const wo = j * inputs;
          for (let i = 0; i < inputs; i++) sum += weights[wo + i]! * x[xo + i]!;
          y[s * outputs + j] = last ? Math.tanh(sum) : sum > 0 ? sum : 0;
        }
      }
      trace?.push(y);
      x = y;
    }
    return x;
  }

  /**
   * One Adam step on a batch against `targets` (count × outputs); returns the batch's mean squared
   * error before the step.
   */
  trainBatch(input: Float32Array, targets: Float32Array, count: number, o: AdamOptions): number {
    const trace: Float32Array[] = [];
    const out = this.forward(input, count, trace);
    const grads = this.layers.map((l) => ({ w: new Float32Array(l.weights.length), b: new Float32Array(l.bias.length) }));
    // d loss / d output, through tanh: (y - t) * 2 / count * (1 - y^2).
    let loss = 0;
    let delta = new Float32Array(out.length);
    for (let k = 0; k < out.length; k++) {
      const e = out[k]! - targets[k]!;
      loss += e * e;
      delta[k] = ((2 * e) / out.length) * (1 - out[k]! * out[k]!);
    }
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const { inputs, outputs, weights } = this.layers[l]!;
      const x = trace[l]!;
      const g = grads[l]!;
      const back = new Float32Array(count * inputs);
      for (let s = 0; s < count; s++) {
        for (let j = 0; j < outputs; j++) {
          const d = delta[s * outputs + j]!;
          if (d === 0) continue;
          g.b[j]! += d;
          const wo = j * inputs;
          const xo = s * inputs;
          for (let i = 0; i < inputs; i++) {
            g.w[wo + i]! += d * x[xo + i]!;
            back[xo + i]! += d * weights[wo + i]!;
          }
        }
      }
      if (l > 0) for (let k = 0; k < back.length; k++) if (x[k]! <= 0) back[k] = 0; // ReLU
      delta = back;
    }
    this.#adam(grads, o);
    return loss / out.length;
  }

  #adam(grads: Array<{ w: Float32Array; b: Float32Array }>, o: AdamOptions): void {
    const beta1 = o.beta1 ?? 0.9;
    const beta2 = o.beta2 ?? 0.999;
    const eps = o.epsilon ?? 1e-8;
    this.#moments ??= this.layers.map((l) => [
      { m: new Float32Array(l.weights.length), v: new Float32Array(l.weights.length) },
      { m: new Float32Array(l.bias.length), v: new Float32Array(l.bias.length) },
    ]);
    const t = ++this.#adamSteps;
    const lr = (o.learningRate * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
    this.layers.forEach((layer, l) => {
      const pairs: Array<[Float32Array, Float32Array, Moments]> = [
        [layer.weights, grads[l]!.w, this.#moments![l]![0]!],
        [layer.bias, grads[l]!.b, this.#moments![l]![1]!],
      ];
      for (const [p, g, { m, v }] of pairs)
        for (let i = 0; i < p.length; i++) {
          m[i] = beta1 * m[i]! + (1 - beta1) * g[i]!;
          v[i] = beta2 * v[i]! + (1 - beta2) * g[i]! * g[i]!;
          p[i] = p[i]! - (lr * m[i]!) / (Math.sqrt(v[i]!) + eps);
        }
    });
  }

  /** The JSON form. Every float32 prints as the shortest decimal that reads back to the same float32 bits. */
  toJson(meta?: Record<string, unknown>): MlpJson {
    return {
      format: 'atp-example-hybrid-mlp/1',
      sizes: this.sizes,
      layers: this.layers.map((l) => ({ weights: Array.from(l.weights), bias: Array.from(l.bias) })),
      ...(meta !== undefined ? { meta } : {}),
    };
  }

  /** A model from its JSON form; throws a RangeError if the shapes do not match. */
  static fromJson(json: MlpJson): Mlp {
    if (json.format !== 'atp-example-hybrid-mlp/1') throw new RangeError(`not a model of this example: format ${String(json.format)}`);
    const layers = json.layers.map((l, k): Layer => {
      const inputs = json.sizes[k]!;
      const outputs = json.sizes[k + 1]!;
      if (l.weights.length !== inputs * outputs || l.bias.length !== outputs)
        throw new RangeError(`layer ${k} does not have ${inputs}×${outputs} weights`);
      return { inputs, outputs, weights: Float32Array.from(l.weights), bias: Float32Array.from(l.bias) };
    });
    if (layers.length !== json.sizes.length - 1) throw new RangeError('layer count does not match sizes');
    return new Mlp(layers);
  }
}

/** A standard normal sample (Box–Muller). */
function gaussian(random: Random): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
