#!/usr/bin/python3
"""Model files as users bring them, for test/onnx-import.test.ts and test/model-files.test.ts
(run by hand: npm run fixtures:interop; Debian's python3-torch and python3-onnx).

onnx-torch/: a scaled-down torchvision AlexNet (the same operators and structure, small widths) with
seeded random weights, exported by torch.onnx.export at several opsets, with an input and PyTorch's
logits for it. Two of its biases are equal, so the exporter shares one initialiser through Identity
nodes; variants pool adaptively to 3×3 (an AveragePool of 2×2 windows) and to 1×1 (GlobalAveragePool).

pytorch-files/: the same net's state_dict as torch.save writes it (.pth), in half precision inside a
training checkpoint with DataParallel's prefixes, with strided and storage-sharing tensors, and as
.safetensors; the gradients of one training step; and files that must be refused: a pickle that
would run a command, a whole pickled nn.Module, a legacy-format file and a truncated one.

onnx-caffe/: a scaled-down bvlc_alexnet as the ONNX model zoo has it (Caffe's layout: two columns,
LRN, 227-pixel input, Gemm, a Softmax output, every Dropout's unread mask output as Caffe2 exported
it), written with ONNX's helper API at old opsets.
"""
import io
import json
import os
import struct
import zipfile

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures')
OUT = os.path.join(FIXTURES, 'onnx-torch')
FILES = os.path.join(FIXTURES, 'pytorch-files')
CAFFE = os.path.join(FIXTURES, 'onnx-caffe')


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


class ZooNet(nn.Module):
    """Our zoo's layouts in PyTorch at small widths: 'paper' is alexnet (224, two columns, LRN with
    the paper's α — PyTorch divides α by the size —, floor pooling); 'small' is alexnet-small-28
    (grey 28×28, 5×5 conv1, ceil pooling)."""

    def __init__(self, layout):
        super().__init__()
        paper = layout == 'paper'
        c = [12, 32, 48, 48, 32] if paper else [8, 16, 16, 16, 16]
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=not paper)
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, 4, 2) if paper else nn.Conv2d(1, c[0], 5, 1, 2), nn.ReLU(), lrn(), pool(),
            nn.Conv2d(c[0], c[1], 5, padding=2, groups=2), nn.ReLU(), lrn(), pool(),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(),
            nn.Conv2d(c[2], c[3], 3, padding=1, groups=2), nn.ReLU(),
            nn.Conv2d(c[3], c[4], 3, padding=1, groups=2), nn.ReLU(), pool())
        side = 6 if paper else 3
        self.classifier = nn.Sequential(
            nn.Linear(c[4] * side * side, 32), nn.ReLU(), nn.Dropout(),
            nn.Linear(32, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def zoo_exports(x224):
    """The zoo's layouts exported by torch.onnx.export: LRN decomposed into ~20–40 nodes."""
    torch.manual_seed(28)
    inputs = {'paper': x224, 'small': torch.rand(2, 1, 28, 28) - 0.5}
    save_npy('input_small.npy', inputs['small'].numpy())
    for layout, x in inputs.items():
        net = ZooNet(layout).eval()
        with torch.no_grad():
            save_npy(f'logits_{layout}.npy', net(x).numpy())
        for opset in (9, 11, 13, 17):
            path = os.path.join(OUT, f'zoo_{layout}_opset{opset}.onnx')
            torch.onnx.export(net, x, path, opset_version=opset, input_names=['data'], output_names=['logits'])
            print(path, os.path.getsize(path))


def save_npy(name, array, folder=OUT):
    np.save(os.path.join(folder, name), np.ascontiguousarray(array, dtype=np.float32))


def write_safetensors(path, tensors):
    """The safetensors layout, written by hand (Debian has no python3-safetensors)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = np.ascontiguousarray(t.detach().numpy(), dtype=np.float32).tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))


class RunsACommand:
    def __reduce__(self):
        return (os.system, ('echo this must never run',))


def pytorch_files(net, x):
    os.makedirs(FILES, exist_ok=True)
    state = net.state_dict()
    torch.save(state, os.path.join(FILES, 'small_alexnet.pth'))
    write_safetensors(os.path.join(FILES, 'small_alexnet.safetensors'), state)
    # half precision in a training checkpoint, saved from DataParallel (module. prefixes)
    half = {f'module.{k}': v.half() for k, v in state.items()}
    torch.save({'epoch': 3, 'state_dict': half, 'best_acc1': 0.5}, os.path.join(FILES, 'small_alexnet_half_checkpoint.pth'))
    rounded = SmallAlexNet(6).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in state.items()})
    with torch.no_grad():
        save_npy('logits_half.npy', rounded(x).numpy(), FILES)
    # a transposed (strided) weight, and two biases that are views into one storage at offsets
    strided = dict(state)
    strided['classifier.6.weight'] = state['classifier.6.weight'].t().contiguous().t()
    both = torch.cat([state['classifier.1.bias'], state['classifier.4.bias'], state['classifier.6.bias']])
    strided['classifier.4.bias'] = both[32:64]
    strided['classifier.6.bias'] = both[64:]
    assert strided['classifier.6.weight'].stride() == (1, 10)
    torch.save(strided, os.path.join(FILES, 'small_alexnet_strided.pth'))
    # one training step's gradients (dropout off: the masks are each engine's own)
    labels = torch.tensor([3, 7])
    net.zero_grad()
    F.cross_entropy(net(x), labels).backward()
    write_safetensors(os.path.join(FILES, 'small_alexnet_grads.safetensors'),
                      {'labels': labels.float(), **{f'grad.{k}': p.grad for k, p in net.named_parameters()}})
    # files that must be refused
    torch.save({'features.0.weight': state['features.0.weight'], 'payload': RunsACommand()}, os.path.join(FILES, 'runs_a_command.pth'))
    torch.save(net, os.path.join(FILES, 'whole_module.pth'))
    torch.save(state, os.path.join(FILES, 'legacy_format.pth'), _use_new_zipfile_serialization=False)
    with open(os.path.join(FILES, 'small_alexnet.pth'), 'rb') as f:
        whole = f.read()
    with open(os.path.join(FILES, 'truncated.pth'), 'wb') as f:
        f.write(whole[:len(whole) // 2])
    for name in sorted(os.listdir(FILES)):
        print(os.path.join(FILES, name), os.path.getsize(os.path.join(FILES, name)))


def caffe_layout(opset):
    """bvlc_alexnet's graph at 1/8 of its widths: conv 12-32-48-48-32, fc 64-64-10."""
    rng = np.random.default_rng(227)
    widths = [(12, 3, 11), (32, 6, 5), (48, 32, 3), (48, 24, 3), (32, 24, 3)]
    params = {}
    for i, (out, inp, k) in enumerate(widths, 1):
        params[f'conv{i}_w_0'] = rng.normal(0, (2 / (inp * k * k)) ** 0.5, (out, inp, k, k)).astype(np.float32)
        params[f'conv{i}_b_0'] = rng.normal(0, 0.1, out).astype(np.float32)
    for name, (out, inp) in {'fc6': (64, 32 * 6 * 6), 'fc7': (64, 64), 'fc8': (10, 64)}.items():
        params[f'{name}_w_0'] = rng.normal(0, (2 / inp) ** 0.5, (out, inp)).astype(np.float32)
        params[f'{name}_b_0'] = rng.normal(0, 0.1, out).astype(np.float32)
    nodes = []

    def node(op, inputs, output, extra_outputs=(), **attrs):
        nodes.append(helper.make_node(op, inputs, [output, *extra_outputs], name=output, **attrs))
        return output

    x = 'data_0'
    pads = {1: 0, 2: 2, 3: 1, 4: 1, 5: 1}
    groups = {1: 1, 2: 2, 3: 1, 4: 2, 5: 2}
    for i in range(1, 6):
        x = node('Conv', [x, f'conv{i}_w_0', f'conv{i}_b_0'], f'conv{i}_1', kernel_shape=[widths[i - 1][2]] * 2,
                 strides=[4, 4] if i == 1 else [1, 1], pads=[pads[i]] * 4, group=groups[i])
        x = node('Relu', [x], f'conv{i}_2')
        if i <= 2:
            x = node('LRN', [x], f'norm{i}_1', size=5, alpha=1e-4, beta=0.75, bias=1.0)
        if i in (1, 2, 5):
            x = node('MaxPool', [x], f'pool{i}_1', kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0])
    if opset < 5:
        x = node('Reshape', [x], 'OC2_DUMMY_0', shape=[1, 32 * 6 * 6])
    else:
        params['OC2_DUMMY_1'] = np.array([1, 32 * 6 * 6], dtype=np.int64)
        x = node('Reshape', [x, 'OC2_DUMMY_1'], 'OC2_DUMMY_0')
    for name, last in (('fc6', False), ('fc7', False), ('fc8', True)):
        gemm = {'broadcast': 1} if opset < 7 else {}
        x = node('Gemm', [x, f'{name}_w_0', f'{name}_b_0'], f'{name}_1', transB=1, **gemm)
        if not last:
            x = node('Relu', [x], f'{name}_2')
            if opset >= 12:  # the ratio became an input, beside training_mode
                params[f'{name}_ratio'] = np.array(0.5, dtype=np.float32)
                params[f'{name}_training'] = np.array(False)
                x = node('Dropout', [x, f'{name}_ratio', f'{name}_training'], f'{name}_3', [f'_{name}_mask_1'])
            else:  # Caffe2's export names every mask, which nothing reads
                x = node('Dropout', [x], f'{name}_3', [f'_{name}_mask_1'], ratio=0.5, **({'is_test': 1} if opset < 7 else {}))
    node('Softmax', [x], 'prob_1')
    graph = helper.make_graph(
        nodes, 'bvlc_alexnet_small',
        [helper.make_tensor_value_info('data_0', TensorProto.FLOAT, [1, 3, 227, 227])],
        [helper.make_tensor_value_info('prob_1', TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)], producer_name='fixture')
    model.ir_version = 3
    return model, params


def caffe_reference(params, x):
    """The same net in PyTorch: ONNX's LRN is PyTorch's local_response_norm (α/n, bias k)."""
    p = {k: torch.from_numpy(v) for k, v in params.items()}
    pads = {1: 0, 2: 2, 3: 1, 4: 1, 5: 1}
    groups = {1: 1, 2: 2, 3: 1, 4: 2, 5: 2}
    for i in range(1, 6):
        x = F.relu(F.conv2d(x, p[f'conv{i}_w_0'], p[f'conv{i}_b_0'], stride=4 if i == 1 else 1, padding=pads[i], groups=groups[i]))
        if i <= 2:
            x = F.local_response_norm(x, 5, alpha=1e-4, beta=0.75, k=1.0)
        if i in (1, 2, 5):
            x = F.max_pool2d(x, 3, 2)
    x = x.flatten(1)
    x = F.relu(F.linear(x, p['fc6_w_0'], p['fc6_b_0']))
    x = F.relu(F.linear(x, p['fc7_w_0'], p['fc7_b_0']))
    return F.linear(x, p['fc8_w_0'], p['fc8_b_0'])


def caffe_files():
    os.makedirs(CAFFE, exist_ok=True)
    torch.manual_seed(227)
    x = torch.rand(1, 3, 227, 227) * 255 - 120
    save_npy('input.npy', x.numpy(), CAFFE)
    for opset in (3, 6, 9, 12):
        model, params = caffe_layout(opset)
        path = os.path.join(CAFFE, f'bvlc_alexnet_small_opset{opset}.onnx')
        onnx.save(model, path)
        print(path, os.path.getsize(path))
    with torch.no_grad():
        save_npy('logits.npy', caffe_reference(params, x).numpy(), CAFFE)


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
        if pool == 6:
            first = net
    pytorch_files(first, x)
    caffe_files()
    zoo_exports(x)


main()
