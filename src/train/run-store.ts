/**
 * Where a training run keeps what it saves: its `last` and `best` checkpoints and its metrics. The
 * CLI's runs keep them in a folder on disk (RunFolder); a page's run keeps them in memory
 * (MemoryRun), the checkpoints as the bytes a run folder would hold, ready to be downloaded.
 */
import { type Checkpoint, decodeCheckpoint, encodeCheckpoint } from '../net/checkpoint.js';

export type CheckpointName = 'last' | 'best';

/** One line of `metrics.jsonl`: an epoch's results. */
export interface EpochMetrics {
  epoch: number;
  step: number;
  loss: number;
  trainError: number;
  valTop1Error: number;
  valTop5Error: number;
  valLoss: number;
  lr: number;
  imagesPerSecond: number;
  /** Training time of the whole run so far (time spent evaluating excluded). */
  wallSeconds: number;
}

/** The line an interrupted epoch leaves: its training so far, no validation. Dropped on resume. */
export type PartialEpochMetrics = Omit<EpochMetrics, 'valTop1Error' | 'valTop5Error' | 'valLoss'> & { partial: true };

export interface RunStore {
  has(file: CheckpointName): boolean;
  /** Names a checkpoint in messages: its path, for a folder. */
  describe(file: CheckpointName): string;
  readCheckpoint(file: CheckpointName): Checkpoint;
  /** A checkpoint's run state, without its tensors where that is cheaper. */
  checkpointState(file: CheckpointName): Record<string, unknown>;
  writeCheckpoint(file: CheckpointName, checkpoint: Checkpoint): void;
  copyCheckpoint(from: CheckpointName, to: CheckpointName): void;
  appendMetrics(m: EpochMetrics | PartialEpochMetrics): void;
  /**
   * Resuming at `epochs` completed epochs: keeps the metrics of those epochs only (dropping an
   * epoch that ran past the checkpoint before a crash, and interrupted epochs' partial lines), and
   * returns the run's training time up to the checkpoint.
   */
  rewindMetrics(epochs: number, step: number): number;
  close(succeeded: boolean): void;
}

/** The metrics a resumed run keeps, and its training time at the checkpoint (RunStore.rewindMetrics). */
export function rewound(all: readonly (EpochMetrics | PartialEpochMetrics)[], epochs: number, step: number) {
  const kept = all.filter((m): m is EpochMetrics => !('partial' in m) && m.epoch <= epochs);
  const atCheckpoint = all.findLast((m) => m.step === step && ('partial' in m || m.epoch <= epochs));
  return { kept, wallSeconds: atCheckpoint?.wallSeconds ?? kept.at(-1)?.wallSeconds ?? 0 };
}

/** A run held in memory. */
export class MemoryRun implements RunStore {
  readonly checkpoints = new Map<CheckpointName, Uint8Array>();
  metrics: (EpochMetrics | PartialEpochMetrics)[] = [];

  constructor(readonly name = 'the run in memory') {}

  has(file: CheckpointName): boolean {
    return this.checkpoints.has(file);
  }

  describe(file: CheckpointName): string {
    return `${this.name}'s ${file} checkpoint`;
  }

  readCheckpoint(file: CheckpointName): Checkpoint {
    const bytes = this.checkpoints.get(file);
    if (!bytes) throw new Error(`${this.name} has no ${file} checkpoint`);
    return decodeCheckpoint(bytes, this.describe(file));
  }

  checkpointState(file: CheckpointName): Record<string, unknown> {
    return this.readCheckpoint(file).state;
  }

  writeCheckpoint(file: CheckpointName, checkpoint: Checkpoint): void {
    this.checkpoints.set(file, encodeCheckpoint(checkpoint));
  }

  copyCheckpoint(from: CheckpointName, to: CheckpointName): void {
    const bytes = this.checkpoints.get(from);
    if (bytes) this.checkpoints.set(to, bytes);
  }

  appendMetrics(m: EpochMetrics | PartialEpochMetrics): void {
    this.metrics.push(m);
  }

  rewindMetrics(epochs: number, step: number): number {
    const { kept, wallSeconds } = rewound(this.metrics, epochs, step);
    this.metrics = kept;
    return wallSeconds;
  }

  close(): void {}
}
