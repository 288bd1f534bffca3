/**
 * Small maps side by side. oneDNN 2.6's AVX2 direct convolution computes an output row a few pixels
 * at a time, so a 13-pixel row ends in a short block: the torchvision net's conv3–conv5 at batch 64
 * ran at 127–150 GFLOP/s (a C probe, 2 threads) against 157–196 on one map as wide as 64 of theirs.
 * So a stride-1 forward pass over a batch of blocked maps narrower than `STRIP_BELOW` runs on strips:
 * the images of a chunk side by side in one wide map, `gap` zero columns (the padding each needs)
 * between them; the output columns that straddle two images are dropped as the rows are copied back.
 * 27-pixel maps gain nothing (the torchvision net's conv2: 190–214 ms either way). In the engine, the
 * torchvision net at batch 64 (three interleaved rounds): conv3 134–154 → 110–113 ms, conv4 172–205
 * → 147–153, conv5 113–135 → 96–112; the whole pass 1.03–1.09× (in-process A/B). The paper net's
 * two-column conv4 and conv5 gained 0–5 %; its conv3 reads NCHW (LRN, then pooling) and is left as it is.
 */
import type { Conv2dGeometry } from '../kernels.js';
import { task } from '../wasm/tasks.js';
import type { Dnnl, Placed } from './dnnl.js';
import type { KernelHost } from '../wasm/host.js';
import { rightPadding, STRIP_IMAGES, stripsApply } from './policy.js';

type Buffers = { x: Placed; weight: Placed; bias?: Placed; y: Placed };

/** The forward pass on strips where it applies (true), or nothing (false). */
export function stripConvolution(host: KernelHost, dnnl: Dnnl, g: Conv2dGeometry, b: Buffers): boolean {
  const block = b.x.layout?.block;
  if (!block || !stripsApply(g, block, b.y.readAsNchw ?? false)) return false;
  const padRight = rightPadding(g);
  const gap = Math.max(g.padLeft, padRight);
  const withBias = b.bias !== undefined;
  const strip = (images: number) => {
    const inWidth = images * (g.inWidth + gap) - gap;
    const sg: Conv2dGeometry = { ...g, batch: 1, inWidth, outWidth: inWidth + g.padLeft + padRight - g.kernelW + 1 };
    const layout = dnnl.blockedLayout([1, g.inChannels, g.inHeight, inWidth], block);
    const runs = dnnl.convolutionReads('forward', sg, withBias, layout) && dnnl.convolutionWrites(sg, withBias)?.block === block;
    return { sg, layout, runs };
  };
  const fullImages = Math.min(STRIP_IMAGES, g.batch);
  const [full, last] = [strip(fullImages), strip(g.batch % STRIP_IMAGES || fullImages)];
  if (!full.runs || !last.runs) return false;
  const [inFloats, outFloats] = [g.inChannels * g.inHeight * full.sg.inWidth, g.outChannels * g.outHeight * full.sg.outWidth];
  const area = host.workspace(inFloats + outFloats);
  const [stripX, stripY] = [area, area + 4 * inFloats];
  const [pixelBytes, inImage, outImage] = [4 * block, g.inChannels * g.inHeight * g.inWidth, g.outChannels * g.outHeight * g.outWidth];
  for (let n0 = 0; n0 < g.batch; n0 += STRIP_IMAGES) {
    const images = Math.min(STRIP_IMAGES, g.batch - n0);
    const { sg, layout } = images === fullImages ? full : last;
    const copy = (rows: number, a: Omit<Parameters<typeof task.copyRows>[0], 'rows' | 'images' | 'range'>) =>
      host.run(host.perThread(images * rows).map((range) => task.copyRows({ ...a, rows, images, range })));
    copy((g.inChannels / block) * g.inHeight, {
      src: b.x.offset + 4 * n0 * inImage,
      srcImage: 4 * inImage,
      srcRow: g.inWidth * pixelBytes,
      dst: stripX,
      dstImage: (g.inWidth + gap) * pixelBytes,
      dstRow: sg.inWidth * pixelBytes,
      bytes: g.inWidth * pixelBytes,
      zeros: gap * pixelBytes,
    });
    const x = { offset: stripX, stamp: 0, layout };
    dnnl.convolution('forward', sg, { x, weight: b.weight, bias: b.bias, y: { offset: stripY, stamp: 0 } }, host.at(0));
    copy((g.outChannels / block) * g.outHeight, {
      src: stripY,
      srcImage: (g.inWidth + gap) * pixelBytes,
      srcRow: sg.outWidth * pixelBytes,
      dst: b.y.offset + 4 * n0 * outImage,
      dstImage: 4 * outImage,
      dstRow: g.outWidth * pixelBytes,
      bytes: g.outWidth * pixelBytes,
      zeros: 0,
    });
  }
  b.y.layout = dnnl.blockedLayout([g.batch, g.outChannels, g.outHeight, g.outWidth], block);
  return true;
}
