#!/usr/bin/python3
"""ImageNet-sized test photographs for `prepare`'s benchmark: N JPEGs of about 500×375 (sizes and
orientations varied as ILSVRC's are), quality 90, in class folders. Smooth random colour fields with
edges, so they compress like photographs rather than flat colour. Usage: make_photos.py N OUT [CLASSES]"""
import os
import sys

import numpy as np
from PIL import Image


def main():
    count, out = int(sys.argv[1]), sys.argv[2]
    classes = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    rng = np.random.default_rng(2012)
    for c in range(classes):
        os.makedirs(os.path.join(out, 'train', f'n{c:08d}'), exist_ok=True)
    for i in range(count):
        w, h = (500, 375) if rng.random() < 0.75 else (375, 500)
        w, h = int(w * rng.uniform(0.8, 1.2)), int(h * rng.uniform(0.8, 1.2))
        coarse = rng.integers(0, 256, (h // 25 + 2, w // 25 + 2, 3), dtype=np.uint8)
        field = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), dtype=np.int16)
        field += rng.integers(-12, 13, (h, w, 3), dtype=np.int16)  # sensor noise
        image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
        image.save(os.path.join(out, 'train', f'n{i % classes:08d}', f'{i:06d}.jpg'), quality=90)


main()
