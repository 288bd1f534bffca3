/**
 * What a resumed run may change. A run resumes with the settings it was started with; one that
 * differs is refused, unless named in `overrides` and of a kind that can change mid-run (the
 * learning rate, not the batch size, which counts the run's position), and then recorded.
 */
import type { RunOptions, SettingChange } from './run-options.js';
import type { NetSpec } from '../net/spec.js';

interface Setting {
  /** The CLI option's name, which `overrides` uses too. */
  name: string;
  get: (o: Partial<RunOptions>) => unknown;
  /** Why it cannot change, for the settings that cannot. */
  fixed?: string;
}

const SETTINGS: Setting[] = [
  { name: 'lr', get: (o) => o.lr },
  { name: 'momentum', get: (o) => o.momentum },
  { name: 'weight-decay', get: (o) => o.weightDecay },
  { name: 'epochs', get: (o) => o.epochs },
  { name: 'schedule', get: (o) => o.schedule },
  { name: 'crop-pad', get: (o) => o.augment?.pad },
  { name: 'flip', get: (o) => o.augment?.flip },
  { name: 'class-names', get: (o) => o.classNames },
  { name: 'freeze', get: (o) => o.frozen ?? [] },
  { name: 'batch', get: (o) => o.batch, fixed: "the run's position is counted in its batches" },
  { name: 'seed', get: (o) => o.seed, fixed: "the run's data order and dropout masks follow from it" },
  { name: 'init', get: (o) => o.init, fixed: 'the weights were initialised with it' },
  { name: 'init-from', get: (o) => o.initFrom, fixed: 'the weights were initialised from it' },
  { name: 'training images', get: (o) => o.trainImages, fixed: 'it must see the same data (same dataset, same --val)' },
  { name: 'validation images', get: (o) => o.validationImages, fixed: 'it must see the same data (same dataset, same --val)' },
  { name: 'pixel mean', get: (o) => o.mean, fixed: 'it must see the same data' },
  { name: 'pixel std', get: (o) => o.std, fixed: 'it must see the same data' },
];

export const CHANGEABLE = SETTINGS.filter((s) => !s.fixed).map((s) => s.name);

/** JSON with sorted keys: equal settings compare equal whatever their key order. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

export interface ResumeCheck {
  stored: Partial<RunOptions>;
  storedSpec: NetSpec;
  given: RunOptions;
  spec: NetSpec;
  overrides: string[];
  /** Where the run stands. */
  at: { epoch: number; step: number };
  source: string;
}

/** Checks the settings of a resumed run against its checkpoint's. Returns every change the run
 * has seen (earlier ones first), how many this call added, and the factor by which the
 * learning rate changed (an epoch schedule's current rate is scaled by it). */
export function resumeSettings(r: ResumeCheck): { changes: SettingChange[]; added: number; lrFactor: number } {
  const unknown = r.overrides.filter((name) => !SETTINGS.some((s) => s.name === name));
  if (unknown.length > 0)
    throw new Error(
      `--override: unknown setting ${unknown.map((n) => `'${n}'`).join(', ')} (settings that can change: ${CHANGEABLE.join(', ')})`,
    );
  if (canonical(r.storedSpec) !== canonical(r.spec))
    throw new Error(`--resume: the model differs from the run's (in ${r.source}); a run continues with the model it started with`);
  const changes: SettingChange[] = [];
  for (const setting of SETTINGS) {
    const from = setting.get(r.stored),
      to = setting.get(r.given);
    if (from === undefined || canonical(from) === canonical(to)) continue; // older checkpoints lack some settings
    const change = `--resume: ${setting.name} ${canonical(to)} differs from the run's ${canonical(from)} (in ${r.source})`;
    if (setting.fixed) throw new Error(`${change}; it cannot change: ${setting.fixed}`);
    if (!r.overrides.includes(setting.name)) throw new Error(`${change}; to change it from here on, add --override ${setting.name}`);
    changes.push({ epoch: r.at.epoch, step: r.at.step, setting: setting.name, from, to });
  }
  const lrFactor = r.stored.lr !== undefined ? r.given.lr / r.stored.lr : 1;
  return { changes: [...(r.stored.changes ?? []), ...changes], added: changes.length, lrFactor };
}
