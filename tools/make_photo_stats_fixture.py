#!/usr/bin/python3
"""test/fixtures/photo-stats/: a few 16×16 PNGs in class folders (lossless, and already the stored
size, so every decoder reads the same pixels) and numpy's statistics of their RGB values — the mean
image, the per-channel mean, the covariance and its eigen-decomposition (numpy.linalg.eigh) — for
the store's PCA statistics to be checked against. Run by hand: /usr/bin/python3 tools/make_photo_stats_fixture.py"""
import json
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'photo-stats')


def main():
    rng = np.random.default_rng(16)
    images = []
    for c, tint in enumerate([(1.0, 0.6, 0.3), (0.3, 0.7, 1.0)]):
        folder = os.path.join(OUT, 'train', f'class{c}')
        os.makedirs(folder, exist_ok=True)
        for i in range(4):
            base = rng.integers(0, 256, (16, 16, 1)).astype(np.float64)
            pixels = np.clip(base * np.array(tint) + rng.integers(-20, 21, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f'{i}.png'))
            images.append(np.asarray(Image.open(os.path.join(folder, f'{i}.png')).convert('RGB'), dtype=np.float64))
    stack = np.stack(images)  # N × H × W × 3
    rgb = stack.reshape(-1, 3)
    covariance = np.cov(rgb, rowvar=False, bias=True)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    expected = {
        'meanImage': stack.mean(axis=0).transpose(2, 0, 1).reshape(-1).tolist(),  # C × H × W
        'rgbMean': rgb.mean(axis=0).tolist(),
        'covariance': covariance.tolist(),
        'eigenvalues': values[order].tolist(),
        'eigenvectors': vectors[:, order].T.tolist(),  # rows
    }
    with open(os.path.join(OUT, 'numpy-stats.json'), 'w') as f:
        json.dump(expected, f)


main()
