"""AMV-ML folded for inference: batch norms and symmetric paddings moved into the convolutions before them.

PyTorch's eager mode runs a batch norm, and EfficientNet-Lite's TensorFlow-style "same" padding, as separate passes
over the activations: on the 2-core CPU they take more of a view batch's time than the convolutions themselves
(docs/training.md, "NHWC layout"). In eval mode a batch norm is an affine map per channel, which the convolution
before it can absorb; a symmetric zero padding is the convolution's own `padding`. The folded copy computes the same
function up to float rounding, faster; it cannot train (its batch norms are gone), so it is made from a snapshot of
the weights and used for inference only. ONNX Runtime folds the same way on its own (models/onnx_views.py).
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from photo2cad.device import place_network
from photo2cad.models.amvml import AMVML

# (convolution, batch norm) attribute pairs of the blocks whose forward applies the one right after the other:
# EfficientNet-Lite's MBConv block (efficientnet_lite_pytorch) and torchvision's ResNet BasicBlock. Consecutive
# children of an nn.Sequential are found without a list: a Sequential runs its children in order.
_BLOCK_PAIRS = {
    "MBConvBlock": (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")),
    "BasicBlock": (("conv1", "bn1"), ("conv2", "bn2")),
}


def folded_for_inference(model: AMVML, keep_original: bool = True) -> AMVML:
    """A copy of `model` in eval mode with every batch norm folded into its convolution and every symmetric static
    padding into the convolution's own; on `model`'s device, in the layout `place_network` gives. `model` is
    untouched, unless `keep_original` is False: then `model` itself is folded, which saves a copy's memory where
    nothing else holds it (a network just loaded for inference)."""
    device = next(model.parameters()).device
    folded = (copy.deepcopy(model) if keep_original else model).eval()
    for module in list(folded.modules()):
        pairs = list(_BLOCK_PAIRS.get(type(module).__name__, ()))
        if isinstance(module, nn.Sequential):
            names = [name for name, _ in module.named_children()]
            pairs += list(zip(names[:-1], names[1:], strict=True))
        for conv_name, norm_name in pairs:
            conv, norm = getattr(module, conv_name, None), getattr(module, norm_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, norm))
                setattr(module, norm_name, nn.Identity())
    for module in folded.modules():
        _absorb_symmetric_padding(module)
        if isinstance(module, (nn.Hardtanh, nn.ReLU)):  # ReLU6 is a Hardtanh
            module.inplace = True  # each acts on a convolution's fresh output: nothing else holds it
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    return place_network(folded, device)


def _absorb_symmetric_padding(module: nn.Module) -> None:
    """EfficientNet-Lite's Conv2dStaticSamePadding pads with a ZeroPad2d module before an unpadded convolution;
    when the padding is the same on both sides it is the convolution's own (the asymmetric ones, of stride-2
    convolutions, stay)."""
    padding = getattr(module, "static_padding", None)
    if not (isinstance(module, nn.Conv2d) and isinstance(padding, nn.ZeroPad2d)):
        return
    left, right, top, bottom = padding.padding
    if left == right and top == bottom and module.padding == (0, 0):
        module.padding = (top, left)
        module.static_padding = nn.Identity()
