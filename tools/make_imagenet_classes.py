#!/usr/bin/python3
"""src/models/imagenet-classes.ts (then npm run format): ILSVRC-2012's 1000 class names in the synset order that
torchvision's and Caffe's pretrained AlexNets score them (torchvision's list; Debian's python3-torchvision)."""
import json
import os

from torchvision.models._meta import _IMAGENET_CATEGORIES

OUT = os.path.join(os.path.dirname(__file__), '..', 'src', 'models', 'imagenet-classes.ts')
assert len(_IMAGENET_CATEGORIES) == 1000
with open(OUT, 'w') as f:
    f.write('/** ILSVRC-2012\'s 1000 classes in synset order, as pretrained AlexNets score them (torchvision\'s names; '
            'written by tools/make_imagenet_classes.py). */\n')
    f.write('export const IMAGENET_CLASSES: readonly string[] = ')
    f.write(json.dumps(_IMAGENET_CATEGORIES))  # npm run format puts one per line
    f.write(';\n')
