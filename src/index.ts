/** alexnet-ts: the library's public surface — everything in browser.ts, plus what needs Node
 * (files, ONNX through protobufjs, the benchmark harness). */
export * from './browser.js';
export { BACKENDS, createBackend, type BackendChoice, type ChosenBackend } from './backend/choose.js';
export { createNativeBackend, nativeOf, type NativeOptions } from './backend/native/backend.js';
export { loadBlas } from './backend/native/blas.js';
export { loadDnnl } from './backend/native/dnnl.js';
export { nodeGpuDevice } from './backend/webgpu/node.js';
export { ENVIRONMENT } from './config.js';
export { importOnnx, loadOnnxFile, supportedOnnxOps, UnsupportedOnnxError, type ImportedModel, type ImportOptions } from './onnx/import.js';
export { models, resolveModel } from './models/index.js';
export { bench, formatBench, type BenchOptions, type BenchResult } from './bench/bench.js';
export { readModel, openModel, MODEL_KINDS, type ModelFile, type ModelKind, type OpenedModel, type ReadOptions } from './models/open.js';
export { classifyImages, type Classified, type Unreadable } from './models/classify.js';
export { imageFilesIn } from './data/images.js';
export { readPth } from './io/pth.js';
export { CAFFE, TORCHVISION, type Preprocess } from './data/preprocess.js';
export { IMAGENET_CLASSES } from './models/imagenet-classes.js';
export { listPhotos, type PhotoDataset } from './data/photos.js';
export { openStore, prepareStore, prepareInMemory, StoreReader, type RecordReader, type StoreIndex } from './data/store.js';
export { setUpRun, type RunSetup, type RunSetupOptions } from './train/setup.js';
export { Diverged, train, type TrainOptions, type TrainResult } from './train/trainer.js';
export { planTraining, type PlanOptions, type TrainingPlan, type TrainRequest } from './train/request.js';
export { scoreModel, scoringBatch, type ScoreOptions } from './train/score.js';
export { exportModel, EXPORT_FORMATS, type ExportFormat } from './models/export.js';
export { evaluate, evaluateStore, paddedTestViews, testCrops, type EvalResult, type ImageView } from './train/evaluate.js';
export { logitsInBatches, softmaxRows } from './net/inference.js';
export { defaultRecipe, recipes, resolveSettings, type Recipe, type TrainingSettings } from './train/recipes.js';
export { features, forEachFeatureBatch, lastHiddenBlob, nearestNeighbours, NearestNeighbours, type Neighbour } from './train/features.js';
export {
  datasetImages,
  drawNeighbours,
  labelAgreement,
  modelNeighbours,
  neighboursFigure,
  searchNeighbours,
  searchPixels,
  type FigureImages,
  type NeighbourSearch,
} from './report/neighbours.js';
export { colourShare, filterGridPng, lineChartPng, neighboursPng } from './report/plots.js';
export { colourComponents, imageSetBatches, type ColourComponents } from './data/batches.js';
export { loadDataset, type ImageSet } from './data/dataset.js';
export { reproduce, type ReproduceOptions, type Reproduction } from './reproduce/reproduction.js';
export { CLAIMS, type Claim, type RunResult } from './reproduce/reproduce.js';
export { FULL, QUICK, type Scale } from './reproduce/arms.js';
