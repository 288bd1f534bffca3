/**
 * A model's weights for other tools: an ONNX inference graph (onnx/export.ts), or a PyTorch
 * state_dict as safetensors under the net's parameter names (torchvision's, for
 * alexnet-torchvision). Both record the model's preprocessing and class names in their metadata.
 */
import { serializeSafetensors } from '../io/safetensors.js';
import { exportOnnx } from '../onnx/export.js';
import type { OpenedModel } from './open.js';

export const EXPORT_FORMATS = ['onnx', 'safetensors'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export async function exportModel(model: OpenedModel, format: ExportFormat): Promise<Uint8Array> {
  const { net } = model;
  const described = {
    ...(model.preprocess ? { preprocess: JSON.stringify(model.preprocess) } : {}),
    ...(model.classNames ? { classNames: JSON.stringify(model.classNames) } : {}),
  };
  if (format === 'onnx') return exportOnnx(net, described);
  const params = await net.readParams();
  const tensors = Object.fromEntries(net.params.map((p) => [p.name, { shape: p.shape, data: params[p.name]! }]));
  return serializeSafetensors(tensors, { format: 'pt', ...described });
}
