"""Attribution maps over the model's input plots: Grad-CAM, integrated gradients and occlusion, via Captum.

Why Captum: one maintained library (PyTorch's own, BSD) covers all three method families behind one
``attribute(inputs, target=...)`` interface — gradient-based (IntegratedGradients), perturbation-based
(Occlusion) and CAM (LayerGradCam) — on any ``nn.Module``, with no assumptions about the model's class or
its output head. pytorch-grad-cam covers only CAM methods, so integrated gradients and occlusion would
need a second library.

Every method returns one map per plot at plot resolution ``[B, H, W]``: the *positive evidence* for the
target output (attribution summed over colour channels, negative values clipped to zero), so that maps
of all methods read alike and "share of attribution" is a share of non-negative mass. Baselines (for
integrated gradients and occlusion) are the plot of a silent chunk: every pixel the colour map's lowest
colour, i.e. what the model sees where there is no energy, rather than a black image the model never saw.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from dspl.explain.methods import METHODS

INTEGRATED_GRADIENT_STEPS = 32
INTEGRATED_GRADIENT_BATCH = 64  # interpolated plots per forward pass
OCCLUSION_WINDOW = 8  # the occluding patch covers 1/8 of the plot's side, moved by half its size
OCCLUSION_BATCH = 16  # occluded plots per forward pass
GRADCAM_MIN_CELLS = 7  # the last feature map of a 224 px plot in most backbones


def silent_baseline(plots: torch.Tensor, colormap: torch.Tensor | None) -> torch.Tensor:
    """The baseline input: a silent chunk's plot (the colour map's first entry everywhere), else zeros."""
    if colormap is None or plots.shape[1] != 3:
        return torch.zeros_like(plots)
    return colormap[0].to(plots).view(1, 3, 1, 1).expand_as(plots).contiguous()


def gradcam_layer(model: nn.Module, sample: torch.Tensor) -> nn.Module:
    """Grad-CAM's layer: the last module to finish with a feature map of at least ``GRADCAM_MIN_CELLS`` cells
    per side, else the last with more than one pixel.

    On a 224 px plot that is the backbone's last feature map (7 x 7 for most), as in Selvaraju et al.; on the
    small plots of audio models the last map is 2 x 2, which shows where the input's energy is rather than
    what the model learned, so an earlier stage is taken. Found by running ``sample`` once with forward hooks,
    so it works for any backbone (timm, torchvision) whatever its layer names; heads that pool first
    (MobileNetV3's ``conv_head``) are skipped.
    """
    spatial: list[nn.Module] = []
    fine: list[nn.Module] = []

    def hook(module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[-1] * output.shape[-2] > 1:
            spatial.append(module)
            if min(output.shape[-2:]) >= GRADCAM_MIN_CELLS:
                fine.append(module)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(sample[:1])
    finally:
        for handle in handles:
            handle.remove()
    if not spatial:
        raise ValueError("the model has no layer with a spatial feature map: Grad-CAM does not apply")
    return (fine or spatial)[-1]


def _gradcam(model: nn.Module, plots: torch.Tensor, targets: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(model, gradcam_layer(model, plots))
    maps = cam.attribute(plots, target=targets, relu_attributions=True)
    return LayerAttribution.interpolate(maps, tuple(plots.shape[-2:]), interpolate_mode="bilinear")


def _integrated_gradients(model: nn.Module, plots: torch.Tensor, targets: torch.Tensor,
                          baseline: torch.Tensor) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    return IntegratedGradients(model).attribute(plots, baselines=baseline, target=targets,
                                                n_steps=INTEGRATED_GRADIENT_STEPS,
                                                internal_batch_size=INTEGRATED_GRADIENT_BATCH)


def _occlusion(model: nn.Module, plots: torch.Tensor, targets: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    from captum.attr import Occlusion

    height, width = plots.shape[-2:]
    window = (plots.shape[1], max(1, height // OCCLUSION_WINDOW), max(1, width // OCCLUSION_WINDOW))
    strides = (plots.shape[1], max(1, window[1] // 2), max(1, window[2] // 2))
    return Occlusion(model).attribute(plots, sliding_window_shapes=window, strides=strides, baselines=baseline,
                                      target=targets, perturbations_per_eval=OCCLUSION_BATCH)


def forward_cost(method: str, height: int, width: int) -> tuple[int, int]:
    """About how many forward passes of how many plots a method costs for one plot of ``height`` x ``width``
    pixels (a backward pass counted as one more pass): its cost, for choosing within a time budget."""
    if method == "occlusion":
        positions = [(size - max(1, size // OCCLUSION_WINDOW)) // max(1, size // OCCLUSION_WINDOW // 2) + 1
                     for size in (height, width)]
        return math.ceil(positions[0] * positions[1] / OCCLUSION_BATCH) + 1, OCCLUSION_BATCH
    if method == "integrated-gradients":
        batch = min(INTEGRATED_GRADIENT_STEPS, INTEGRATED_GRADIENT_BATCH)
        return 2 * math.ceil(INTEGRATED_GRADIENT_STEPS / batch), batch
    return 3, 1  # Grad-CAM: the pass that finds its layer, one forward and one backward pass


_METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "gradcam": _gradcam, "integrated-gradients": _integrated_gradients, "occlusion": _occlusion,
}


def attribute(model: nn.Module, plots: torch.Tensor, targets: torch.Tensor, method: str = "occlusion",
              colormap: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Maps ``[B, H, W]`` (float32, ≥ 0) of how much each pixel of ``plots`` ``[B, C, H, W]`` drove output
    ``targets[b]`` of ``model`` (in eval mode). ``colormap``: the plot's colour table, for the baseline.

    The seed is set first, so a model with randomness left in eval mode still gives the same maps.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown attribution method {method!r}: expected one of {', '.join(METHODS)}")
    torch.manual_seed(seed)
    model.eval()
    plots = plots.detach().float().requires_grad_(True)
    baseline = silent_baseline(plots, colormap)
    maps = _METHODS[method](model, plots, targets.long(), baseline)
    return maps.sum(dim=1).clamp_min(0.0).detach().float()
