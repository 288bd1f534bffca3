#!/usr/bin/python3
"""PyTorch peer of `alexnet predict` for start-up timing: a torchvision-layout AlexNet state_dict
(.pth) loaded into the net, one photo preprocessed as torchvision's ImageNet models expect (PIL:
Resize(256) bilinear, CenterCrop(224), ImageNet's mean and deviation), the top-5 class indices
printed. What a PyTorch user runs, without torchvision (Debian packages none for this PyTorch).
Usage: pytorch_predict.py MODEL.pth IMAGE THREADS"""
import sys

import numpy as np
import torch
from PIL import Image

from pytorch_bench import torchvision_net


def main():
    path, image, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    net = torchvision_net()
    # the Sequential's indices are torchvision's features.N / classifier.N split in one list
    names = [n for n, _ in net.named_parameters()]
    state = torch.load(path, map_location='cpu')
    net.load_state_dict(dict(zip(names, state.values())))
    net.eval()
    photo = Image.open(image).convert('RGB')
    w, h = photo.size
    scale = 256 / min(w, h)
    photo = photo.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    w, h = photo.size
    left, top = round((w - 224) / 2), round((h - 224) / 2)
    photo = photo.crop((left, top, left + 224, top + 224))
    x = (np.asarray(photo, dtype=np.float32) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    x = torch.from_numpy(x.transpose(2, 0, 1).astype(np.float32))[None]
    with torch.no_grad():
        top = torch.softmax(net(x), 1)[0].topk(5)
    print(' '.join(f'{i}:{p:.4f}' for p, i in zip(top.values.tolist(), top.indices.tolist())))


main()
