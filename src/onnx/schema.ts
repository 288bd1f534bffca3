/** ONNX's own schema, onnx.proto (shipped beside the sources), as text. The app's bundle
 * (tools/build-app.mjs) replaces this module with one holding the file's text: pages read no files. */
import { readFileSync } from 'node:fs';

export function onnxSchemaText(): string {
  // dist/src/onnx/schema.js → <package>/src/onnx/onnx.proto
  return readFileSync(new URL('../../../src/onnx/onnx.proto', import.meta.url), 'utf8');
}
