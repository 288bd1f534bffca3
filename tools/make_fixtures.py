#!/usr/bin/python3
"""Writes PyTorch reference fixtures for the layer tests: test/fixtures/pytorch/<case>.safetensors.

Run by hand with Debian's python3-torch (`npm run fixtures`); CI only reads the committed files.
Each file holds one small network in our JSON spec format (metadata "net", "batch", "training")
and, as float32 tensors:
  input.<blob>        values fed to the net's inputs
  param.<name>        parameters, under the engine's names (conv1.weight, ...)
  output.<blob>       what PyTorch computed for the net's outputs
  grad_output.<blob>  the output gradient backpropagated (absent: output.loss is backpropagated
                      with gradient 1, and the other outputs are intermediate activations)
  grad_input.<blob>   the gradient PyTorch computed for each input that takes one
  grad_param.<name>   the gradient of each parameter
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'pytorch')


def save_safetensors(path, tensors, metadata):
    header = {'__metadata__': metadata}
    offset = 0
    blobs = []
    for name, t in tensors.items():
        data = np.ascontiguousarray(t.detach().cpu().numpy().astype('<f4'))
        header[name] = {'dtype': 'F32', 'shape': list(data.shape), 'data_offsets': [offset, offset + data.nbytes]}
        offset += data.nbytes
        blobs.append(data.tobytes())
    raw = json.dumps(header).encode()
    raw += b' ' * ((8 - len(raw) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def case(name, net, batch, run, params=None, training=False, labels=None, seed_outputs=True):
    """run(inputs: dict, params: dict) -> dict of output tensors, all torch ops."""
    torch.manual_seed(sum(map(ord, name)))
    inputs = {}
    for blob, shape in net['inputs'].items():
        if labels and blob in labels:
            inputs[blob] = torch.randint(0, labels[blob], (batch,)).float()
        else:
            inputs[blob] = torch.randn(batch, *shape, dtype=torch.float64).float().requires_grad_(True)
    params = {k: v.float().requires_grad_(True) for k, v in (params or {}).items()}
    outputs = run(inputs, params)
    tensors = {f'input.{k}': v for k, v in inputs.items()}
    tensors.update({f'param.{k}': v for k, v in params.items()})
    tensors.update({f'output.{k}': v for k, v in outputs.items()})
    if seed_outputs:
        seeds = {k: torch.randn_like(v) for k, v in outputs.items()}
        torch.autograd.backward(list(outputs.values()), list(seeds.values()))
        tensors.update({f'grad_output.{k}': v for k, v in seeds.items()})
    else:
        outputs['loss'].backward()
    for k, v in inputs.items():
        if v.grad is not None:
            tensors[f'grad_input.{k}'] = v.grad
    for k, v in params.items():
        tensors[f'grad_param.{k}'] = v.grad
    full = {'name': name, **net}
    save_safetensors(os.path.join(OUT, f'{name}.safetensors'), tensors,
                     {'net': json.dumps(full), 'batch': str(batch), 'training': json.dumps(training)})
    print(f'{name}: {", ".join(tensors)}')


def single(layer, shape):
    return {'inputs': {'x': shape}, 'layers': [{'name': 'layer', **layer}]}


def conv_params(out_c, in_c, kh, kw, groups=1, bias=True):
    p = {'layer.weight': torch.randn(out_c, in_c // groups, kh, kw) * 0.3}
    if bias:
        p['layer.bias'] = torch.randn(out_c) * 0.1
    return p


def conv_case(name, layer, shape, torch_pad=None, **conv_kw):
    out_c, k = layer['outChannels'], layer['kernel']
    kh, kw = (k, k) if isinstance(k, int) else k
    groups = layer.get('groups', 1)
    params = conv_params(out_c, shape[0], kh, kw, groups, layer.get('bias', True))

    def run(i, p):
        x = i['x'] if torch_pad is None else F.pad(i['x'], torch_pad)
        return {'layer': F.conv2d(x, p['layer.weight'], p.get('layer.bias'), groups=groups, **conv_kw)}
    case(name, single({'type': 'conv2d', **layer}, shape), 2, run, params)


def make_all():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    conv_case('conv_basic', {'outChannels': 4, 'kernel': 3}, [3, 7, 6])
    conv_case('conv_stride2_pad1', {'outChannels': 5, 'kernel': 3, 'stride': 2, 'pad': 1}, [3, 9, 8], stride=2, padding=1)
    conv_case('conv_alexnet_conv1_like', {'outChannels': 8, 'kernel': 11, 'stride': 4, 'pad': 2}, [3, 27, 27], stride=4, padding=2)
    conv_case('conv_groups2', {'outChannels': 6, 'kernel': 5, 'pad': 2, 'groups': 2}, [4, 7, 7], padding=2)
    conv_case('conv_depthwise', {'outChannels': 6, 'kernel': 3, 'pad': 1, 'groups': 3}, [3, 6, 6], padding=1)
    conv_case('conv_dilated_rect', {'outChannels': 3, 'kernel': [3, 2], 'stride': [1, 2], 'dilation': 2}, [2, 9, 9], stride=(1, 2), dilation=2)
    # [top, left, bottom, right] in the spec; F.pad takes (left, right, top, bottom)
    conv_case('conv_asymmetric_pad_no_bias', {'outChannels': 3, 'kernel': 3, 'stride': 2, 'pad': [1, 0, 2, 1], 'bias': False}, [2, 7, 6], torch_pad=(0, 1, 1, 2), stride=2)

    for name, layer, shape, kw in [
        ('maxpool_3s2', {'kernel': 3, 'stride': 2}, [3, 9, 9], dict(kernel_size=3, stride=2)),
        ('maxpool_3s2_ceil', {'kernel': 3, 'stride': 2, 'ceil': True}, [3, 8, 10], dict(kernel_size=3, stride=2, ceil_mode=True)),
        ('maxpool_pad1', {'kernel': 3, 'stride': 2, 'pad': 1}, [2, 7, 6], dict(kernel_size=3, stride=2, padding=1)),
        # ceil would give 4 windows; the last would start in the right padding, so PyTorch drops it
        ('maxpool_ceil_last_window_in_padding', {'kernel': 2, 'stride': 2, 'pad': 1, 'ceil': True}, [2, 5, 5],
         dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
        ('maxpool_dilated_ceil', {'kernel': 2, 'stride': 2, 'dilation': 2, 'pad': 1, 'ceil': True}, [2, 9, 8],
         dict(kernel_size=2, stride=2, dilation=2, padding=1, ceil_mode=True)),
    ]:
        case(name, single({'type': 'maxpool2d', **layer}, shape), 2, lambda i, p, kw=kw: {'layer': F.max_pool2d(i['x'], **kw)})

    # PyTorch's LocalResponseNorm divides alpha by size ('over-n'); the paper's formula is the same
    # with alpha·size handed to PyTorch.
    for name, layer, shape in [
        ('lrn_paper_alexnet', {'size': 5, 'alpha': 1e-4, 'beta': 0.75, 'k': 2}, [10, 4, 4]),
        ('lrn_paper_strong', {'size': 5, 'alpha': 0.05, 'beta': 0.75, 'k': 2}, [7, 3, 3]),
        ('lrn_over_n', {'size': 3, 'alpha': 0.2, 'beta': 0.5, 'k': 1, 'alphaConvention': 'over-n'}, [6, 3, 2]),
    ]:
        torch_alpha = layer['alpha'] * (1 if layer.get('alphaConvention') == 'over-n' else layer['size'])
        case(name, single({'type': 'lrn', **layer}, shape), 2,
             lambda i, p, l=layer, a=torch_alpha: {'layer': F.local_response_norm(i['x'], l['size'], a, l['beta'], l['k'])})

    for fn in ['relu', 'tanh', 'sigmoid']:
        case(fn, single({'type': fn}, [3, 4, 5]), 2, lambda i, p, fn=fn: {'layer': getattr(torch, fn)(i['x'])})

    case('linear', single({'type': 'linear', 'outFeatures': 7}, [9]), 3,
         lambda i, p: {'layer': F.linear(i['x'], p['layer.weight'], p['layer.bias'])},
         {'layer.weight': torch.randn(7, 9) * 0.3, 'layer.bias': torch.randn(7)})
    case('linear_from_4d_no_bias', single({'type': 'linear', 'outFeatures': 5, 'bias': False}, [2, 3, 3]), 2,
         lambda i, p: {'layer': F.linear(i['x'].flatten(1), p['layer.weight'])}, {'layer.weight': torch.randn(5, 18) * 0.3})
    case('dropout_eval', single({'type': 'dropout', 'p': 0.5}, [4, 3]), 2,
         lambda i, p: {'layer': F.dropout(i['x'], 0.5, training=False)})
    case('flatten', single({'type': 'flatten'}, [3, 2, 2]), 2, lambda i, p: {'layer': torch.flatten(i['x'], 1)})
    case('adaptive_avgpool_13_to_6', single({'type': 'adaptive_avgpool2d', 'output': 6}, [3, 13, 13]), 2,
         lambda i, p: {'layer': F.adaptive_avg_pool2d(i['x'], 6)})
    case('adaptive_avgpool_7x5_to_3x4', single({'type': 'adaptive_avgpool2d', 'output': [3, 4]}, [2, 7, 5]), 2,
         lambda i, p: {'layer': F.adaptive_avg_pool2d(i['x'], (3, 4))})
    case('softmax', single({'type': 'softmax'}, [6]), 3, lambda i, p: {'layer': F.softmax(i['x'], 1)})
    case('log_softmax_4d', single({'type': 'log_softmax'}, [5, 2, 3]), 2, lambda i, p: {'layer': F.log_softmax(i['x'], 1)})
    case('concat_channels', {'inputs': {'a': [2, 3, 3], 'b': [3, 3, 3]},
                             'layers': [{'name': 'cat', 'type': 'concat', 'inputs': ['a', 'b']}]}, 2,
         lambda i, p: {'cat': torch.cat([i['a'], i['b']], 1)})
    case('split_channels', {'inputs': {'x': [5, 2, 2]}, 'layers': [{'name': 'parts', 'type': 'split', 'sizes': [2, 3]}]}, 2,
         lambda i, p: dict(zip(['parts:0', 'parts:1'], torch.split(i['x'], [2, 3], 1))))
    case('softmax_cross_entropy', {'inputs': {'logits': [10], 'label': []},
                                   'layers': [{'name': 'loss', 'type': 'softmax_cross_entropy', 'inputs': ['logits', 'label']}]}, 6,
         lambda i, p: {'loss': F.cross_entropy(i['logits'], i['label'].long())}, labels={'label': 10}, seed_outputs=False)
    make_tiny_alexnet()
    make_blocked_chain()


def layer_params(shapes, seed, scale):
    """Weights N(0, scale²) and biases N(0, 0.01) for each layer's weight shape, from their own generator."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for layer, shape in shapes.items():
        params[f'{layer}.weight'] = torch.randn(*shape, generator=g) * scale
        params[f'{layer}.bias'] = torch.randn(shape[0], generator=g) * 0.1
    return params


def make_tiny_alexnet():
    """A scaled two-column AlexNet: grouped convs, LRN (paper convention) after conv1 and conv2,
    overlapping 3/2 max-pools (ceil, as Caffe), fully connected layers and the softmax loss."""
    net = {'inputs': {'data': [3, 31, 31], 'label': []}, 'layers': [
        {'name': 'conv1', 'type': 'conv2d', 'outChannels': 8, 'kernel': 5, 'stride': 2, 'pad': 1},
        {'name': 'relu1', 'type': 'relu'},
        {'name': 'norm1', 'type': 'lrn', 'size': 5, 'alpha': 1e-2, 'beta': 0.75, 'k': 2},
        {'name': 'pool1', 'type': 'maxpool2d', 'kernel': 3, 'stride': 2, 'ceil': True},
        {'name': 'conv2', 'type': 'conv2d', 'outChannels': 12, 'kernel': 3, 'pad': 1, 'groups': 2},
        {'name': 'relu2', 'type': 'relu'},
        {'name': 'norm2', 'type': 'lrn', 'size': 5, 'alpha': 1e-2, 'beta': 0.75, 'k': 2},
        {'name': 'pool2', 'type': 'maxpool2d', 'kernel': 3, 'stride': 2, 'ceil': True},
        {'name': 'conv3', 'type': 'conv2d', 'outChannels': 16, 'kernel': 3, 'pad': 1},
        {'name': 'relu3', 'type': 'relu'},
        {'name': 'conv4', 'type': 'conv2d', 'outChannels': 12, 'kernel': 3, 'pad': 1, 'groups': 2},
        {'name': 'relu4', 'type': 'relu'},
        {'name': 'pool5', 'type': 'maxpool2d', 'kernel': 3, 'stride': 2},
        {'name': 'fc6', 'type': 'linear', 'outFeatures': 20},
        {'name': 'relu6', 'type': 'relu'},
        {'name': 'drop6', 'type': 'dropout', 'p': 0.5},
        {'name': 'fc7', 'type': 'linear', 'outFeatures': 5},
        {'name': 'loss', 'type': 'softmax_cross_entropy', 'inputs': ['fc7', 'label']},
    ]}
    params = layer_params({'conv1': (8, 3, 5, 5), 'conv2': (12, 4, 3, 3), 'conv3': (16, 12, 3, 3), 'conv4': (12, 8, 3, 3),
                           'fc6': (20, 12), 'fc7': (5, 20)}, seed=7, scale=0.3)

    def run(i, p):
        out = {}
        x = F.conv2d(i['data'], p['conv1.weight'], p['conv1.bias'], stride=2, padding=1)
        x = out['norm1'] = F.local_response_norm(F.relu(x), 5, 1e-2 * 5, 0.75, 2)
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = F.conv2d(x, p['conv2.weight'], p['conv2.bias'], padding=1, groups=2)
        x = F.local_response_norm(F.relu(x), 5, 1e-2 * 5, 0.75, 2)
        x = out['pool2'] = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = F.relu(F.conv2d(x, p['conv3.weight'], p['conv3.bias'], padding=1))
        x = out['relu4'] = F.relu(F.conv2d(x, p['conv4.weight'], p['conv4.bias'], padding=1, groups=2))
        x = F.max_pool2d(x, 3, 2).flatten(1)
        x = F.relu(F.linear(x, p['fc6.weight'], p['fc6.bias']))  # dropout: identity in evaluation mode
        x = out['fc7'] = F.linear(x, p['fc7.weight'], p['fc7.bias'])
        out['loss'] = F.cross_entropy(x, i['label'].long())
        return out
    case('tiny_alexnet', net, 4, run, params, labels={'label': 5}, seed_outputs=False)


def make_blocked_chain():
    """Convolutions with 16 and 32 channels (multiples of oneDNN's blocks of 8 and 16) feeding ReLUs,
    padded and unpadded max-pools, a grouped convolution and a fully connected layer: the native backend
    keeps these activations in oneDNN's blocked layout between layers; every intermediate is compared."""
    net = {'inputs': {'data': [3, 17, 17], 'label': []}, 'layers': [
        {'name': 'conv1', 'type': 'conv2d', 'outChannels': 16, 'kernel': 3, 'pad': 1},
        {'name': 'relu1', 'type': 'relu'},
        {'name': 'pool1', 'type': 'maxpool2d', 'kernel': 3, 'stride': 2, 'pad': 1, 'ceil': True},
        {'name': 'conv2', 'type': 'conv2d', 'outChannels': 16, 'kernel': 3, 'pad': 1, 'groups': 2},
        {'name': 'relu2', 'type': 'relu'},
        {'name': 'conv3', 'type': 'conv2d', 'outChannels': 32, 'kernel': 3, 'pad': 1},
        {'name': 'relu3', 'type': 'relu'},
        {'name': 'pool3', 'type': 'maxpool2d', 'kernel': 3, 'stride': 2},
        {'name': 'fc', 'type': 'linear', 'outFeatures': 10},
        {'name': 'loss', 'type': 'softmax_cross_entropy', 'inputs': ['fc', 'label']},
    ]}
    params = layer_params({'conv1': (16, 3, 3, 3), 'conv2': (16, 8, 3, 3), 'conv3': (32, 16, 3, 3), 'fc': (10, 32 * 4 * 4)},
                          seed=11, scale=0.2)

    def run(i, p):
        out = {}
        x = out['relu1'] = F.relu(F.conv2d(i['data'], p['conv1.weight'], p['conv1.bias'], padding=1))
        x = out['pool1'] = F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)
        x = out['relu2'] = F.relu(F.conv2d(x, p['conv2.weight'], p['conv2.bias'], padding=1, groups=2))
        x = out['relu3'] = F.relu(F.conv2d(x, p['conv3.weight'], p['conv3.bias'], padding=1))
        x = out['pool3'] = F.max_pool2d(x, 3, 2)
        x = out['fc'] = F.linear(x.flatten(1), p['fc.weight'], p['fc.bias'])
        out['loss'] = F.cross_entropy(x, i['label'].long())
        return out
    case('blocked_chain', net, 4, run, params, labels={'label': 10}, seed_outputs=False)


if __name__ == '__main__':
    make_all()
