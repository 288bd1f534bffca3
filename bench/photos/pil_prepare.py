#!/usr/bin/python3
"""The peer for `prepare`: the same work in Debian's Python, as torchvision users do it — PIL decode,
convert('RGB'), Resize(256) (bilinear, antialiased), CenterCrop(256), to a uint8 array — over every
JPEG under DIR, in one process. Prints images/s. Usage: pil_prepare.py DIR [SIZE]"""
import os
import sys
import time

import numpy as np
from PIL import Image
from torchvision import transforms


def main():
    root, size = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 256
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(root) for f in names if f.endswith('.jpg'))
    pipeline = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size)])
    start = time.perf_counter()
    total = 0
    for f in files:
        with Image.open(f) as image:
            total += int(np.asarray(pipeline(image.convert('RGB')), dtype=np.uint8)[0, 0, 0])
    seconds = time.perf_counter() - start
    print(f'PIL + torchvision: {len(files)} images in {seconds:.2f} s, {len(files) / seconds:.1f} images/s (1 process)')


main()
