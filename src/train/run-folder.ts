/**
 * A training run's folder: its checkpoints, its metrics and a lock. Opening it refuses to touch an
 * existing run unless asked to resume it (or to start over with `force`), checks that it can be
 * written before any training happens, clears temporary files of writes a crash cut short, and
 * keeps two processes from training into it at once.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeError, processAlive, removeStaleTemporaries, writeFileAtomic } from '../io/files.js';
import { type Checkpoint, readCheckpoint, readCheckpointHeader, RUN_CHECKPOINTS, writeCheckpoint } from '../net/checkpoint.js';
import { readFileBytes } from '../io/files.js';
import { type CheckpointName, type EpochMetrics, type PartialEpochMetrics, rewound, type RunStore } from './run-store.js';

export const RUN_FILES = {
  ...RUN_CHECKPOINTS,
  metrics: 'metrics.jsonl',
  curves: 'curves.png',
  filters: 'conv1-filters.png',
} as const;

const LOCK = 'train.lock';

export class RunFolder implements RunStore {
  private constructor(
    readonly dir: string,
    private readonly created: boolean,
  ) {}

  static open(dir: string, options: { resume?: boolean; force?: boolean } = {}): RunFolder {
    if (options.resume && options.force) throw new Error('--resume continues a run and --force starts it over: give one of them');
    const created = !existsSync(dir);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new Error(`cannot create run folder ${dir}: ${describeError(error)}`, { cause: error });
    }
    const folder = new RunFolder(dir, created);
    folder.lock();
    try {
      removeStaleTemporaries(dir);
      folder.checkExisting(options);
    } catch (error) {
      folder.close(false);
      throw error;
    }
    return folder;
  }

  path(file: keyof typeof RUN_FILES): string {
    return join(this.dir, RUN_FILES[file]);
  }

  has(file: keyof typeof RUN_FILES): boolean {
    return existsSync(this.path(file));
  }

  /** The lock doubles as the check that the folder can be written. */
  private lock(): void {
    const path = join(this.dir, LOCK);
    for (;;) {
      try {
        writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new Error(`cannot write to run folder ${this.dir}: ${describeError(error)}`, { cause: error });
      }
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new Error(`run folder ${this.dir} is in use by another training process (pid ${owner})`);
      }
      rmSync(path, { force: true }); // left by a process that died
    }
  }

  private checkExisting({ resume, force }: { resume?: boolean; force?: boolean }): void {
    const present = (['last', 'best'] as const).filter((f) => this.has(f));
    if (resume) {
      if (!this.has('last')) throw new Error(`--resume: ${this.dir} holds no ${RUN_FILES.last} to continue from`);
      return;
    }
    if (present.length > 0 && !force) {
      throw new Error(
        `${this.dir} already holds a training run (${present.map((f) => RUN_FILES[f]).join(', ')}): ` +
          'continue it with --resume, or start over with --force (which deletes it)',
      );
    }
    // Without a checkpoint, metrics belong to a run that died before its first one: nothing to resume.
    for (const file of Object.keys(RUN_FILES) as (keyof typeof RUN_FILES)[]) rmSync(this.path(file), { force: true });
  }

  describe(file: CheckpointName): string {
    return this.path(file);
  }

  readCheckpoint(file: CheckpointName): Checkpoint {
    return readCheckpoint(this.path(file));
  }

  checkpointState(file: CheckpointName): Record<string, unknown> {
    return readCheckpointHeader(this.path(file)).state;
  }

  writeCheckpoint(file: CheckpointName, checkpoint: Checkpoint): void {
    writeCheckpoint(this.path(file), checkpoint);
  }

  copyCheckpoint(from: CheckpointName, to: CheckpointName): void {
    writeFileAtomic(this.path(to), readFileBytes(this.path(from), 'checkpoint'));
  }

  appendMetrics(m: EpochMetrics | PartialEpochMetrics): void {
    appendFileSync(this.path('metrics'), `${JSON.stringify(m)}\n`);
  }

  rewindMetrics(epochs: number, step: number): number {
    const { kept, wallSeconds } = rewound(this.has('metrics') ? readLines(this.path('metrics')) : [], epochs, step);
    writeFileAtomic(this.path('metrics'), kept.map((m) => `${JSON.stringify(m)}\n`).join(''));
    return wallSeconds;
  }

  /** Releases the lock; after a failure, a folder this run created and left without a checkpoint
   * is removed, so a failed start leaves nothing behind. */
  close(succeeded: boolean): void {
    rmSync(join(this.dir, LOCK), { force: true });
    if (!succeeded && this.created && !this.has('last') && !this.has('best')) {
      const others = readdirSync(this.dir).filter((name) => name !== RUN_FILES.metrics);
      if (others.length === 0) rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** The epochs of a metrics file (not the lines of interrupted epochs). */
export function readMetricsFile(path: string): EpochMetrics[] {
  return readLines(path).filter((m): m is EpochMetrics => !('partial' in m));
}

/** Every line that parses; a line cut short by a crash is skipped. */
function readLines(path: string): (EpochMetrics | PartialEpochMetrics)[] {
  const metrics: (EpochMetrics | PartialEpochMetrics)[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    try {
      const m = JSON.parse(line) as EpochMetrics;
      if (typeof m === 'object' && m !== null && Number.isInteger(m.epoch) && Number.isInteger(m.step)) metrics.push(m);
    } catch {
      // an empty line, or the end of a line a crash cut short
    }
  }
  return metrics;
}
