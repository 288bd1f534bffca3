#!/usr/bin/python3
"""PyTorch twin of `alexnet train --data FASHION_MNIST --epochs E` (the `scaled` recipe): the same net
(alexnet-small-28), initialisation, update rule, schedule, augmentation and hold-out, for timing
the same recipe in PyTorch on the same machine. Prints one JSON line per epoch and one at the end.
Usage: fmnist_train.py DATA_DIR EPOCHS THREADS [SEED]
Run it as PyTorch's CPU tuning guide advises, its freed memory kept:
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 /usr/bin/python3 bench/peers/fmnist_train.py …"""
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    with gzip.open(path) if path.endswith('.gz') else open(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data, split):
    names = {'train': 'train', 'test': 't10k'}[split]
    find = lambda kind: next(os.path.join(data, f) for f in os.listdir(data) if f.startswith(f'{names}-{kind}'))
    return idx(find('images')), idx(find('labels'))


class SmallAlexNet(nn.Module):
    """alexnet-small-28: 32-64-64-64-64 convolutions (conv2, conv4, conv5 in two columns), the paper's
    LRN (PyTorch divides α by the size, so α·5), ceil-mode 3/2 pools, 512-unit FC layers, dropout 0.25."""

    def __init__(self):
        super().__init__()
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)
        relu = lambda: nn.ReLU(inplace=True)
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), relu(), lrn(), pool(),
            nn.Conv2d(32, 64, 5, padding=2, groups=2), relu(), lrn(), pool(),
            nn.Conv2d(64, 64, 3, padding=1), relu(),
            nn.Conv2d(64, 64, 3, padding=1, groups=2), relu(),
            nn.Conv2d(64, 64, 3, padding=1, groups=2), relu(), pool(), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Linear(576, 512), relu(), nn.Dropout(0.25), nn.Linear(512, 512), relu(), nn.Dropout(0.25), nn.Linear(512, 10))
        for m in self.modules():  # He et al.: N(0, 2/fanIn), biases 0, as `--init kaiming`
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, 0, math.sqrt(2 / fan_in))
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    data, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, labels = load(data, 'train')
    test_images, test_labels = load(data, 'test')
    order = rng.permutation(len(labels))  # 5,000 held out for validation, as the CLI's default
    held, kept = order[:5000], order[5000:]
    train_x = images[kept].astype(np.float32) / 255
    mean, std = float(train_x.mean()), float(train_x.std())
    norm = lambda a: torch.from_numpy(((a.astype(np.float32) / 255 - mean) / std)[:, None])
    x_train, y_train = norm(images[kept]), torch.from_numpy(labels[kept].astype(np.int64))
    x_val, y_val = norm(images[held]), torch.from_numpy(labels[held].astype(np.int64))
    x_test, y_test = norm(test_images), torch.from_numpy(test_labels.astype(np.int64))

    net = SmallAlexNet()
    params = list(net.parameters())
    velocities = [torch.zeros_like(p) for p in params]
    batch, base_lr, momentum, decay, warmup = 64, 0.05, 0.9, 0.0005, 0.3
    steps_per_epoch = len(y_train) // batch
    total, warmup_steps = steps_per_epoch * epochs, warmup * steps_per_epoch

    def lr_at(step):  # `--schedule linear:0.3`: a warm-up, then linear to 0 at the last step
        if step < warmup_steps:
            return base_lr * (step + 1) / warmup_steps
        return base_lr * (total - step) / (total - warmup_steps)

    def scores(x, y, mirror=False):
        net.eval()
        hits = hits_mirrored = 0
        with torch.no_grad():
            for i in range(0, len(y), 500):
                p = F.softmax(net(x[i:i + 500]), 1)
                hits += (p.argmax(1) == y[i:i + 500]).sum().item()
                if mirror:
                    q = (p + F.softmax(net(torch.flip(x[i:i + 500], [3])), 1)) / 2
                    hits_mirrored += (q.argmax(1) == y[i:i + 500]).sum().item()
        net.train()
        return hits / len(y), hits_mirrored / len(y)

    start, step = time.perf_counter(), 0
    for epoch in range(epochs):
        perm = torch.from_numpy(rng.permutation(len(y_train)))
        loss_sum = 0.0
        epoch_start = time.perf_counter()
        for b in range(steps_per_epoch):
            idx_ = perm[b * batch:(b + 1) * batch]
            x, y = x_train[idx_], y_train[idx_]
            flip = torch.from_numpy(rng.random(batch) < 0.5)
            x = torch.where(flip[:, None, None, None], torch.flip(x, [3]), x)
            loss = F.cross_entropy(net(x), y)
            net.zero_grad(set_to_none=False)
            loss.backward()
            lr = lr_at(step)
            with torch.no_grad():  # the paper's rule: v ← m·v − wd·ε·w − ε·g; w ← w + v
                for p, v in zip(params, velocities):
                    v.mul_(momentum).add_(p, alpha=-decay * lr).add_(p.grad, alpha=-lr)
                    p.add_(v)
            loss_sum += loss.item()
            step += 1
        seconds = time.perf_counter() - epoch_start
        val, _ = scores(x_val, y_val)
        print(json.dumps({'epoch': epoch + 1, 'loss': loss_sum / steps_per_epoch, 'valTop1Error': 1 - val,
                          'imagesPerSecond': steps_per_epoch * batch / seconds, 'wallSeconds': time.perf_counter() - start}),
              flush=True)
    test, mirrored = scores(x_test, y_test, mirror=True)
    print(json.dumps({'test': test, 'testMirrored': mirrored, 'wallSeconds': time.perf_counter() - start, 'threads': threads,
                      'torch': torch.__version__}), flush=True)


main()
