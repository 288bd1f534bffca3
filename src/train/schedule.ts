/**
 * Learning-rate schedules. The paper's: divide by 10 when the validation error stops improving
 * (here: no new best for `patience` epochs), at most `maxDrops` times. Caffe's: divide by 10 at
 * fixed epochs. Constant. And, for runs with a fixed budget, `linear`: a linear warm-up over the
 * first `warmup` epochs, then a linear fall to 0 at the run's last step, set step by step (Li,
 * Yumer and Ramanan, "Budgeted Training", 2020). A schedule's state is plain JSON, saved in checkpoints.
 */
export type ScheduleSpec =
  | { kind: 'plateau'; patience: number; maxDrops: number; factor?: number }
  | { kind: 'steps'; epochs: number[]; factor?: number }
  | { kind: 'linear'; warmup: number }
  | { kind: 'constant' };

export interface ScheduleState {
  lr: number;
  bestError: number | null;
  epochsSinceBest: number;
  drops: number;
}

export function initialScheduleState(lr: number): ScheduleState {
  return { lr, bestError: null, epochsSinceBest: 0, drops: 0 };
}

/** The state after an epoch ends (`epoch` counts from 1) with the given validation error. */
export function afterEpoch(spec: ScheduleSpec, state: ScheduleState, epoch: number, validationError: number): ScheduleState {
  const next = { ...state };
  if (next.bestError === null || validationError < next.bestError) {
    next.bestError = validationError;
    next.epochsSinceBest = 0;
  } else {
    next.epochsSinceBest++;
  }
  const factor = spec.kind === 'plateau' || spec.kind === 'steps' ? (spec.factor ?? 0.1) : 1;
  if (spec.kind === 'plateau' && next.epochsSinceBest >= spec.patience && next.drops < spec.maxDrops) {
    next.lr *= factor;
    next.drops++;
    next.epochsSinceBest = 0;
  } else if (spec.kind === 'steps' && spec.epochs.includes(epoch)) {
    next.lr *= factor;
    next.drops++;
  }
  return next;
}

/** The learning rate of a step (counting from 0): the epoch schedules' current rate, or the linear
 * schedule's value at this point of a run of `totalSteps`. */
export function learningRateAt(
  spec: ScheduleSpec,
  state: ScheduleState,
  baseLr: number,
  step: number,
  stepsPerEpoch: number,
  totalSteps: number,
): number {
  if (spec.kind !== 'linear') return state.lr;
  const warmupSteps = spec.warmup * stepsPerEpoch;
  if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
  return (baseLr * (totalSteps - step)) / (totalSteps - warmupSteps);
}

/** Parses the CLI form: `plateau[:patience[:maxDrops]]`, `steps:E1,E2,…` (an epoch may be given as a
 * percentage of `epochs`, the run's length: `steps:60%,80%` drops after epochs 3 and 4 of 5),
 * `linear[:warmupEpochs]` (fractions allowed) or `constant`. */
export function parseSchedule(text: string, epochs?: number): ScheduleSpec {
  const [kind, a, b] = text.split(':');
  if (kind === 'constant' && a === undefined) return { kind: 'constant' };
  if (kind === 'plateau') {
    const patience = a === undefined ? 2 : Number(a),
      maxDrops = b === undefined ? 3 : Number(b);
    if (Number.isInteger(patience) && patience >= 1 && Number.isInteger(maxDrops) && maxDrops >= 0)
      return { kind: 'plateau', patience, maxDrops };
  }
  if (kind === 'steps' && a) {
    const at = a
      .split(',')
      .map((e) => (e.endsWith('%') && epochs !== undefined ? Math.max(1, Math.round((Number(e.slice(0, -1)) / 100) * epochs)) : Number(e)));
    if (at.every((e) => Number.isInteger(e) && e >= 1)) return { kind: 'steps', epochs: at };
  }
  if (kind === 'linear' && b === undefined) {
    const warmup = a === undefined ? 0 : Number(a);
    if (epochs !== undefined && warmup >= epochs)
      throw new Error(`schedule '${text}': the warm-up (${warmup} epochs) must end before the run does (${epochs} epochs)`);
    if (a !== '' && Number.isFinite(warmup) && warmup >= 0) return { kind: 'linear', warmup };
  }
  throw new Error(
    `unknown schedule '${text}' (use plateau[:patience[:maxDrops]], ` +
      'steps:E1,E2,… (epochs or percentages of --epochs), linear[:warmupEpochs] or constant)',
  );
}
