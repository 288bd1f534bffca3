#!/usr/bin/python3
"""ONNX files as PyTorch users make them, for test/onnx-import.test.ts (run by hand: npm run fixtures:onnx).

A scaled-down torchvision AlexNet (the same operators and structure, small widths) with seeded random
weights, exported by torch.onnx.export at several opsets, with an input and PyTorch's logits for it.
Two of its biases are equal, so the exporter shares one initialiser through Identity nodes; variants
pool adaptively to 3×3 (an AveragePool of 2×2 windows) and to 1×1 (GlobalAveragePool).
"""
import os

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'onnx-torch')


class SmallAlexNet(nn.Module):
    """torchvision.models.alexnet's layers and names, 8-16-24-16-16 channels, 32-unit classifier."""

    def __init__(self, pool):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(24, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(16 * pool * pool, 32), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(32, 32), nn.ReLU(inplace=True), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def save_npy(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array, dtype=np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(2012)
    x = torch.rand(2, 3, 224, 224) - 0.5
    save_npy('input.npy', x.numpy())
    for pool in (6, 3, 1):
        net = SmallAlexNet(pool).eval()
        with torch.no_grad():
            net.classifier[1].bias.zero_()
            net.classifier[4].bias.zero_()  # equal to the other: one shared initialiser
            save_npy(f'logits_pool{pool}.npy', net(x).numpy())
        for opset in (9, 11, 13, 17):
            path = os.path.join(OUT, f'alexnet_pool{pool}_opset{opset}.onnx')
            torch.onnx.export(net, x, path, opset_version=opset, input_names=['data'], output_names=['logits'])
            print(path, os.path.getsize(path))


main()
