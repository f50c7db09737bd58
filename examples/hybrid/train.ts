/** Train the value network on exact labels, and measure it against the exact solver. */
import { INPUTS, tensorsOf } from './dataset.js';
import type { Sample } from './dataset.js';
import { Mlp } from './mlp.js';
import { mulberry32 } from '../shared/random.js';

/** Options of a training run. */
export interface TrainOptions {
  hidden: number[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Called after each epoch (and once before the first, epoch 0) with the losses so far. */
  onEpoch?: (point: LossPoint) => void;
}

/** Mean squared errors after an epoch (epoch 0: before training). */
export interface LossPoint {
  epoch: number;
  trainLoss: number;
  heldOutLoss: number;
}

/** A value as one of the exact classes: above 1/3 a win, below -1/3 a loss, else a draw. */
export function classify(score: number): -1 | 0 | 1 {
  return score > 1 / 3 ? 1 : score < -1 / 3 ? -1 : 0;
}

/** Mean squared error of the model on samples. */
export function meanSquaredError(model: Mlp, samples: readonly Sample[]): number {
  const { inputs, targets } = tensorsOf(samples);
  const out = model.forward(inputs, samples.length);
  let sum = 0;
  for (let i = 0; i < out.length; i++) sum += (out[i]! - targets[i]!) ** 2;
  return sum / Math.max(1, out.length);
}

/** How the model's classes compare with the exact values. */
export interface Accuracy {
  accuracy: number;
  /** confusion[exact + 1][predicted + 1] */
  confusion: number[][];
  /** Accuracy of always answering the most common exact value. */
  majorityBaseline: number;
  count: number;
}

/** Classify every sample and compare with its exact value. */
export function accuracyOf(model: Mlp, samples: readonly Sample[]): Accuracy {
  const { inputs } = tensorsOf(samples);
  const out = model.forward(inputs, samples.length);
  const confusion = [0, 1, 2].map(() => [0, 0, 0]);
  let right = 0;
  samples.forEach((s, i) => {
    const p = classify(out[i]!);
    confusion[s.value + 1]![p + 1]!++;
    if (p === s.value) right++;
  });
  const counts = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  return {
    accuracy: right / Math.max(1, samples.length),
    confusion,
    majorityBaseline: Math.max(...counts) / Math.max(1, samples.length),
    count: samples.length,
  };
}

/** Train a fresh network with minibatch Adam; returns it and its loss curve. */
export function train(trainSet: readonly Sample[], heldOut: readonly Sample[], o: TrainOptions): { model: Mlp; curve: LossPoint[] } {
  const random = mulberry32(o.seed);
  const model = Mlp.create([INPUTS, ...o.hidden, 1], random);
  const { inputs, targets } = tensorsOf(trainSet);
  const n = trainSet.length;
  const curve: LossPoint[] = [];
  const record = (epoch: number) => {
    const point = { epoch, trainLoss: meanSquaredError(model, trainSet), heldOutLoss: meanSquaredError(model, heldOut) };
    curve.push(point);
    o.onEpoch?.(point);
  };
  record(0);
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const bx = new Float32Array(o.batchSize * INPUTS);
  const by = new Float32Array(o.batchSize);
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let start = 0; start < n; start += o.batchSize) {
      const count = Math.min(o.batchSize, n - start);
      for (let k = 0; k < count; k++) {
        const s = order[start + k]!;
        bx.set(inputs.subarray(s * INPUTS, (s + 1) * INPUTS), k * INPUTS);
        by[k] = targets[s]!;
      }
      model.trainBatch(bx.subarray(0, count * INPUTS), by.subarray(0, count), count, { learningRate: o.learningRate });
    }
    record(epoch);
  }
  return { model, curve };
}
