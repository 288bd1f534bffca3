/**
 * Which route each pass of a convolution or a linear layer takes on the native backend, in one
 * place: strips of small maps side by side in oneDNN (strips.ts), oneDNN's direct kernels
 * (dnnl.ts), im2col + the BLAS's GEMM (routes.ts), or the wasm kernels. Every threshold is named
 * here with the measurement behind it; the routes dispatch on these answers (a route may still
 * decline at run time where oneDNN has no kernel for the shapes, and the next one runs).
 */
import { keepsLayouts, stripsSetting } from '../../config.js';
import type { Conv2dGeometry, LinearParams } from '../kernels.js';
import { ROW_BY_ROW_BATCH } from '../wasm/host.js';

export type Route = 'strips' | 'dnnl' | 'blas' | 'wasm';
export type ConvolutionPass = 'forward' | 'backward_data' | 'backward_weights';
export type LinearPass = 'forward' | 'backward_data' | 'backward_params';

/**
 * Linear layers below this many weights stay on the wasm kernels: the small Fashion-MNIST net's
 * (0.3 M) measured alike both ways. Every convolution goes to the BLAS since its threads stop
 * spinning between calls (OPENBLAS_THREAD_TIMEOUT, blas.ts): the small net (12–37 K weights per
 * group) then trained at 614–815 images/s against 558–628 with them in wasm (five rounds, batch
 * 64), the paper net's conv1 (35 K) took 2.7 instead of 4.7 ms at batch 1; before that fix the BLAS
 * lost on the small net, 277–349 against 378–487 (BENCHMARKS.md, 2026-12-01, the webgpu-round
 * measurements).
 */
export const NATIVE_FROM = { linearWeights: 1_000_000 };

/**
 * From this batch a large linear layer's forward pass runs as oneDNN's 1×1 convolution, its
 * weights blocked once while unchanged (OpenBLAS packs them at every call): in-process A/B at batch
 * 64, the torchvision net 1.046–1.076× faster, the paper net 0.997–1.047×; the paper net's training
 * at batch 128 1.099×. It also beats the wasm kernel that reads the weights row by row from batch 3
 * (30 rounds: batch 4 0.873 / 0.895 of its time, batch 3 0.973; batch 2 0.942 / 1.035). Its backward
 * passes measured 0.93× (weights) and 0.995× (data) so: they stay on the BLAS.
 */
export const DNNL_LINEAR_FROM_BATCH = 3;

/**
 * Below 8 input channels per group oneDNN pads the channels to its block of 8, so the data gradient
 * stays on im2col + BLAS (a first layer never needs it), and so does the weight gradient with 2–7
 * channels where im2col's GEMM (out channels per group × taps) reaches this: the paper net's conv1
 * (96 × 363, batch 64) 172–181 ms on the BLAS against 214 on oneDNN. Where it is small, the BLAS's
 * skinny GEMM loses: the CIFAR net's conv1 (32 × 75) 7.7–10.5 ms against 4.8–5.5 on oneDNN.
 */
export const SMALL_WEIGHT_GEMM = 8192;

/** Output widths below which a strip pays (oneDNN's AVX2 kernel computes a 13-pixel row in short
 * blocks; side by side, 16 images' rows make one long one). */
export const STRIP_BELOW = 16;

/** Images per strip: 16 ran as fast as 64 (conv4 at 13×13: 34–35 ms per 16 images, 132–142 per 64),
 * and keeps the workspace to a quarter. */
export const STRIP_IMAGES = 16;

/**
 * Whether strips run for tensors in `block`-channel blocks. They pay for the AVX2 kernel (8-channel
 * blocks); oneDNN's AVX-512 kernel (16-channel blocks) takes 13-wide rows well and only the copies
 * are left: on a 2-vCPU Zen 4, in-process A/B, the torchvision net's batch-64 pass ran 0.925–0.932×
 * the time without strips, the paper net's 0.976×. `ALEXNET_DNNL_STRIPS=on|off` overrides.
 */
export function stripsFor(block: number): boolean {
  const setting = stripsSetting();
  return setting === 'on' || (block === 8 && setting !== 'off');
}

/** The right padding of a convolution's input (negative: columns it never reads). */
export function rightPadding(g: Conv2dGeometry): number {
  return g.outWidth + g.kernelW - 1 - g.inWidth - g.padLeft;
}

/** Whether a forward convolution runs on strips: its input in `block`-channel blocks (undefined:
 * NCHW), unit steps, narrow outputs, a batch to lay side by side, its output kept blocked. */
export function stripsApply(g: Conv2dGeometry, block: number | undefined, outputReadAsNchw: boolean): boolean {
  const unitStep = g.strideH === 1 && g.strideW === 1 && g.dilationH === 1 && g.dilationW === 1;
  return (
    block !== undefined &&
    stripsFor(block) &&
    unitStep &&
    g.batch >= 2 &&
    g.outWidth < STRIP_BELOW &&
    rightPadding(g) >= 0 &&
    g.outChannels % block === 0 &&
    !outputReadAsNchw &&
    keepsLayouts()
  );
}

/** The convolution passes oneDNN is not asked for (`SMALL_WEIGHT_GEMM`). */
export function dnnlDeclines(pass: ConvolutionPass, g: Conv2dGeometry): boolean {
  const cg = g.inChannels / g.groups;
  if (cg >= 8 || pass === 'forward') return false;
  if (pass === 'backward_data') return true;
  return cg > 1 && (g.outChannels / g.groups) * cg * g.kernelH * g.kernelW >= SMALL_WEIGHT_GEMM;
}

export interface ConvolutionContext {
  /** oneDNN is loaded. */
  dnnl: boolean;
  /** The input's channel block, where a convolution left it blocked. */
  block?: number;
  /** The output was once needed as NCHW (as in training, whose backward kernels read NCHW). */
  outputReadAsNchw?: boolean;
}

export function convolutionRoute(pass: ConvolutionPass, g: Conv2dGeometry, c: ConvolutionContext): Route {
  if (!c.dnnl) return 'blas';
  if (pass === 'forward' && stripsApply(g, c.block, c.outputReadAsNchw ?? false)) return 'strips';
  return dnnlDeclines(pass, g) ? 'blas' : 'dnnl';
}

export function linearRoute(pass: LinearPass, p: LinearParams, c: { dnnl: boolean; from?: { linearWeights: number } }): Route {
  if (p.inFeatures * p.outFeatures < (c.from ?? NATIVE_FROM).linearWeights) return 'wasm';
  if (pass !== 'forward') return 'blas';
  if (c.dnnl && p.batch >= DNNL_LINEAR_FROM_BATCH) return 'dnnl';
  return p.batch <= ROW_BY_ROW_BATCH ? 'wasm' : 'blas';
}
