/**
 * Folders of photographs as datasets, in the layouts users have them:
 * - class folders (`train/<class>/*.jpg`, `val/<class>/…`: ImageNet's and Imagenette's layout, or a
 *   root of class folders alone, one split);
 * - ILSVRC's validation layout: a flat folder of images and `LOC_val_solution.csv` (its ImageId,
 *   then the synset first in PredictionString), or the development kit's
 *   `ILSVRC2012_validation_ground_truth.txt` (1-based class ids, one line per image in name order)
 *   beside a `synsets.txt` listing the kit's synset order;
 * - list files of `path label` lines (Caffe's `train.txt`, `val.txt`), paths relative to the file.
 * Classes are the sorted folder names (as torchvision's ImageFolder numbers them), named by
 * `synset_words.txt` or `LOC_synset_mapping.txt` when one is there. Files that are not images are
 * listed, never dropped silently.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { readLines } from '../io/files.js';

export const PHOTO_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif'];

export interface PhotoSplit {
  files: string[];
  labels: number[];
}

export interface PhotoDataset {
  root: string;
  layout: 'class folders' | 'ILSVRC validation' | 'list files';
  /** `train`, and `val` when there is one. */
  splits: Record<string, PhotoSplit>;
  /** The class folders' names (ImageNet's synset ids, n01440764 …), in label order. */
  classIds: string[];
  /** Human-readable names, from a synset file; else the ids. */
  classNames: string[];
  /** Files found that are not images (by extension): listed in `prepare`'s report. */
  ignored: string[];
}

const isImage = (name: string) => PHOTO_EXTENSIONS.includes(extname(name).toLowerCase());
const isDir = (path: string) => statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
const sortedEntries = (dir: string) => readdirSync(dir).sort();

/** Whether a folder is laid out as one of these (by its list files, class folders or ground
 * truth; nothing is listed whole): what `train` and `eval` decode in memory, or refer to `prepare`. */
export function holdsPhotos(dir: string): boolean {
  const folders = [dir, join(dir, 'train'), join(dir, 'val')].filter(isDir);
  const groundTruth = ['LOC_val_solution.csv', 'ILSVRC2012_validation_ground_truth.txt'].some(
    (f) => existsSync(join(dir, f)) || existsSync(join(dir, 'val', f)),
  );
  return (
    existsSync(join(dir, 'train.txt')) ||
    (groundTruth && isDir(join(dir, 'val'))) ||
    folders.some((d) => readdirSync(d).some((e) => e !== 'train' && e !== 'val' && isDir(join(d, e))))
  );
}

/** Reads a dataset folder (or a list file), naming the layouts it looked for when none fits. */
export function listPhotos(path: string): PhotoDataset {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) throw new Error(`dataset ${path} does not exist`);
  if (stat.isFile()) return listFiles(dirname(path), { train: path });
  const lists = Object.fromEntries(
    ['train', 'val'].flatMap((s) => (existsSync(join(path, `${s}.txt`)) ? [[s, join(path, `${s}.txt`)]] : [])),
  );
  if (lists.train) return listFiles(path, lists);
  const splitDirs = ['train', 'val'].filter((s) => isDir(join(path, s)));
  const roots = splitDirs.length > 0 ? Object.fromEntries(splitDirs.map((s) => [s, join(path, s)])) : { train: path };
  const trainRoot = roots.train ?? roots.val!;
  const classIds = sortedEntries(trainRoot).filter((e) => isDir(join(trainRoot, e)));
  if (classIds.length === 0 && !roots.train && roots.val) return ilsvrcOnly(path, roots.val);
  if (classIds.length === 0)
    throw new Error(
      `${path}: no dataset layout fits: expected class folders (train/<class>/*.jpg, val/<class>/…, or <class>/*.jpg), ` +
        `ILSVRC's validation layout (val/*.JPEG with LOC_val_solution.csv), or list files (train.txt, val.txt of "path label" lines)`,
    );
  const ignored: string[] = [];
  const splits: Record<string, PhotoSplit> = {};
  for (const [split, root] of Object.entries(roots)) {
    const classFolders = sortedEntries(root).filter((e) => isDir(join(root, e)));
    splits[split] = classFolders.length > 0 ? classFolderSplit(root, classIds, ignored) : ilsvrcSplit(path, root, classIds, ignored);
  }
  return { root: path, layout: 'class folders', splits, classIds, classNames: classNamesFor(path, classIds), ignored };
}

function classFolderSplit(root: string, classIds: string[], ignored: string[]): PhotoSplit {
  const files: string[] = [],
    labels: number[] = [];
  for (const entry of sortedEntries(root)) {
    const folder = join(root, entry);
    if (!isDir(folder)) {
      ignored.push(folder);
      continue;
    }
    const label = classIds.indexOf(entry);
    if (label < 0) throw new Error(`${folder}: class '${entry}' is not among the training classes (${classIds.length} folders in train/)`);
    for (const name of sortedEntries(folder)) {
      const file = join(folder, name);
      if (isImage(name) && !isDir(file)) {
        files.push(file);
        labels.push(label);
      } else ignored.push(file);
    }
  }
  return { files, labels };
}

/** A flat validation folder labelled by LOC_val_solution.csv or the devkit's ground truth. */
function ilsvrcSplit(root: string, folder: string, classIds: string[], ignored: string[]): PhotoSplit {
  const images = sortedEntries(folder).filter((name) => {
    if (isImage(name)) return true;
    ignored.push(join(folder, name));
    return false;
  });
  const byImage = groundTruth(root, folder, images, classIds);
  const files: string[] = [],
    labels: number[] = [];
  for (const name of images) {
    const label = byImage.get(name.slice(0, name.length - extname(name).length));
    if (label === undefined) throw new Error(`${join(folder, name)}: no ground-truth label for it`);
    files.push(join(folder, name));
    labels.push(label);
  }
  return { files, labels };
}

function groundTruth(root: string, folder: string, images: string[], classIds: string[]): Map<string, number> {
  const csv = [join(root, 'LOC_val_solution.csv'), join(folder, 'LOC_val_solution.csv')].find(existsSync);
  const labels = new Map<string, number>();
  if (csv) {
    for (const [n, line] of readLines(csv).slice(1).entries()) {
      const [image, prediction] = line.split(',');
      const wnid = prediction?.trim().split(/\s+/)[0] ?? '';
      const label = classIds.indexOf(wnid);
      if (!image || label < 0) throw new Error(`${csv}: line ${n + 2}: '${line.slice(0, 60)}' names no known class`);
      labels.set(image, label);
    }
    return labels;
  }
  const txt = [join(root, 'ILSVRC2012_validation_ground_truth.txt'), join(folder, 'ILSVRC2012_validation_ground_truth.txt')].find(
    existsSync,
  );
  const order = [join(root, 'synsets.txt'), join(folder, 'synsets.txt')].find(existsSync);
  if (!txt)
    throw new Error(`${folder}: a flat folder of images needs LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt beside it`);
  if (!order)
    throw new Error(`${txt}: its ids follow the development kit's synset order: put that order (one synset per line) in synsets.txt`);
  const synsets = readLines(order);
  const ids = readLines(txt);
  if (ids.length !== images.length) throw new Error(`${txt}: ${ids.length} labels for ${images.length} images in ${folder}`);
  ids.forEach((id, i) => {
    const label = classIds.indexOf(synsets[Number(id) - 1] ?? '');
    if (label < 0) throw new Error(`${txt}: line ${i + 1}: class id '${id}' is not in synsets.txt's ${synsets.length}`);
    labels.set(images[i]!.slice(0, images[i]!.length - extname(images[i]!).length), label);
  });
  return labels;
}

/** Only a flat val/ folder: the classes come from the synset mapping. */
function ilsvrcOnly(path: string, folder: string): PhotoDataset {
  const mapping = synsetFile(path);
  if (!mapping)
    throw new Error(`${folder}: without train/ class folders, a synset_words.txt or LOC_synset_mapping.txt must list the classes`);
  const classIds = [...mapping.keys()];
  const ignored: string[] = [];
  const val = ilsvrcSplit(path, folder, classIds, ignored);
  return { root: path, layout: 'ILSVRC validation', splits: { val }, classIds, classNames: classNamesFor(path, classIds), ignored };
}

/** `path label` lines; labels are integers from 0, the class count the largest + 1. */
function listFiles(root: string, lists: Record<string, string>): PhotoDataset {
  const splits: Record<string, PhotoSplit> = {};
  let classes = 0;
  for (const [split, list] of Object.entries(lists)) {
    const files: string[] = [],
      labels: number[] = [];
    for (const [n, line] of readLines(list).entries()) {
      const match = /^(.*\S)\s+(\d+)$/.exec(line);
      if (!match) throw new Error(`${list}: line ${n + 1} is not "path label": '${line.slice(0, 80)}'`);
      files.push(resolve(dirname(list), match[1]!));
      labels.push(Number(match[2]));
      classes = Math.max(classes, Number(match[2]) + 1);
    }
    splits[split] = { files, labels };
  }
  const classIds = Array.from({ length: classes }, (_, c) => String(c));
  const names = existsSync(join(root, 'class-names.txt')) ? readLines(join(root, 'class-names.txt')) : classIds;
  return { root, layout: 'list files', splits, classIds, classNames: names.length === classes ? names : classIds, ignored: [] };
}

/** synset_words.txt / LOC_synset_mapping.txt: `n01440764 tench, Tinca tinca` per line. */
function synsetFile(root: string): Map<string, string> | undefined {
  const file = ['synset_words.txt', 'LOC_synset_mapping.txt'].map((f) => join(root, f)).find(existsSync);
  if (!file) return undefined;
  return new Map(
    readLines(file).map((line) => {
      const [id, ...words] = line.split(/\s+/);
      return [id!, words.join(' ').split(',')[0]!.trim()];
    }),
  );
}

function classNamesFor(root: string, classIds: string[]): string[] {
  const mapping = synsetFile(root);
  return classIds.map((id) => mapping?.get(id) || id);
}

export const describeDataset = (d: PhotoDataset) =>
  `${basename(d.root)}: ${d.layout}, ${d.classIds.length} classes, ` +
  Object.entries(d.splits)
    .map(([s, { files }]) => `${s} ${files.length} images`)
    .join(', ');
