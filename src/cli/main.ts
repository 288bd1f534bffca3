#!/usr/bin/env node
/** The `alexnet` command line. */
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { bench, formatBench } from '../bench/bench.js';
import { models, resolveModel } from '../models/index.js';
import { formatSummary, planNet, summarize } from '../net/net.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

const program = new Command('alexnet')
  .description('AlexNet in TypeScript: train, evaluate, run and benchmark AlexNet-class networks')
  .showHelpAfterError('(run with --help for usage)');

program.command('info')
  .description('layers, output shapes, parameters and multiply-adds of a model')
  .requiredOption('--model <name|spec.json>', `a zoo model (${Object.keys(models).join(', ')}) or a JSON net spec`)
  .option('--batch <n>', 'batch size for the shapes', positiveInt, 1)
  .option('--json', 'print one JSON object')
  .action((opts: { model: string; batch: number; json?: boolean }) => {
    const spec = resolveModel(opts.model);
    const rows = summarize(planNet(spec, opts.batch));
    if (opts.json) {
      console.log(JSON.stringify({
        model: spec.name ?? opts.model, inputs: spec.inputs, layers: rows,
        params: rows.reduce((n, r) => n + r.params, 0), macsPerExample: rows.reduce((n, r) => n + r.macsPerExample, 0),
      }));
    } else {
      console.log(`${spec.name ?? opts.model}: inputs ${Object.entries(spec.inputs).map(([k, v]) => `${k} [${v.join(', ')}]`).join(', ')}`);
      console.log(formatSummary(rows));
    }
  });

program.command('bench')
  .description('time inference or a training step (forward, backward, SGD update)')
  .requiredOption('--model <name|spec.json>', 'a zoo model or a JSON net spec')
  .addOption(new Option('--mode <mode>', 'what to time').choices(['train', 'infer']).default('infer'))
  .option('--batch <n>', 'batch size', positiveInt, 64)
  .option('--threads <n>', 'threads (default: available cores)', positiveInt, availableParallelism())
  .option('--steps <n>', 'timed steps after one warm-up', positiveInt, 3)
  .addOption(new Option('--backend <name>', 'backend').choices(['wasm', 'reference']).default('wasm'))
  .option('--json', 'print one JSON object')
  .action(async (opts: { model: string; mode: 'train' | 'infer'; batch: number; threads: number; steps: number; backend: 'wasm' | 'reference'; json?: boolean }) => {
    const result = await bench({ spec: resolveModel(opts.model), mode: opts.mode, batch: opts.batch, threads: opts.threads, steps: opts.steps, backend: opts.backend });
    console.log(opts.json ? JSON.stringify(result) : formatBench(result));
  });

try {
  await program.parseAsync();
} catch (error) {
  console.error(`alexnet: ${(error as Error).message}`);
  process.exit(1);
}
