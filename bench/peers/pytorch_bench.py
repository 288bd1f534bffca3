#!/usr/bin/python3
"""PyTorch peer for `npm run bench`: the same nets, the same steps, one JSON line per configuration.
Usage: pytorch_bench.py MODEL MODE BATCH THREADS STEPS   (MODEL: alexnet | alexnet-torchvision)"""
import json
import os
import sys
import time

import torch
import torch.nn as nn


def relu():
    # In place, as torchvision's AlexNet writes it: no fresh tensor per activation.
    return nn.ReLU(inplace=True)


def paper_net():
    # The paper's LRN (k + alpha * sum) is PyTorch's LocalResponseNorm with alpha * size.
    lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4, 2), relu(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), relu(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), relu(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), relu(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), relu(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(9216, 4096), relu(), nn.Dropout(), nn.Linear(4096, 4096), relu(), nn.Dropout(),
        nn.Linear(4096, 1000))


def torchvision_net():
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), relu(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), relu(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), relu(), nn.Conv2d(384, 256, 3, padding=1), relu(),
        nn.Conv2d(256, 256, 3, padding=1), relu(), nn.MaxPool2d(3, 2), nn.AdaptiveAvgPool2d(6), nn.Flatten(),
        nn.Dropout(), nn.Linear(9216, 4096), relu(), nn.Dropout(), nn.Linear(4096, 4096), relu(),
        nn.Linear(4096, 1000))


def blas_library():
    """The BLAS this process really loaded (Debian's PyTorch takes whatever libblas.so.3 points at)."""
    with open('/proc/self/maps') as maps:
        paths = {line.split()[-1] for line in maps if 'blas' in line.split()[-1]}
    return sorted(os.path.realpath(p) for p in paths)


def gemm_gflops(threads):
    """A quick 1024³ SGEMM rate, so a peer on a slow BLAS shows itself."""
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(5):
        torch.mm(a, b)
    return 2 * 1024 ** 3 * 5 / (time.perf_counter() - start) / 1e9


def main():
    model, mode, batch, threads, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = paper_net() if model == 'alexnet' else torchvision_net()
    x = torch.rand(batch, 3, 224, 224) - 0.5
    y = torch.randint(0, 1000, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=0.0005)

    def step():
        if mode == 'infer':
            net.eval()
            with torch.no_grad():
                net(x)
            return
        net.train()
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - start) * 1000 / steps
    print(json.dumps({'peer': f'pytorch-{torch.__version__}', 'model': model, 'mode': mode, 'batch': batch,
                      'threads': threads, 'imagesPerSecond': batch * 1000 / ms, 'msPerStep': ms,
                      'blas': blas_library(), 'gemmGflops': gemm_gflops(threads)}))


if __name__ == '__main__':  # pytorch_predict.py imports the nets
    main()
