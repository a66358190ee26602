"""Images at the candidate's input side: a batch of stored uint8 images resized on their device.

A dataset is stored once at its canonical side; a candidate that trains at a smaller ``ArchSpec.resolution`` gets
its splits resized once per trial (antialiased bilinear, the same family as the PIL bilinear resize clients are told
to use in ``preprocessing.json``), in chunks so the float copy stays small.

>>> import torch
>>> resize_images(torch.full((2, 1, 8, 8), 200, dtype=torch.uint8), (4, 4)).shape
torch.Size([2, 1, 4, 4])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CHUNK = 1024  # images per interpolation call


def resize_images(images: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 ``[N, C, H, W]`` → uint8 ``[N, C, *size]`` on the same device."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if images.shape[0] == 0:
        return images.new_empty((0, images.shape[1], *size))
    parts = [F.interpolate(chunk.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
             .round_().clamp_(0, 255).to(torch.uint8) for chunk in images.split(CHUNK)]
    return torch.cat(parts)
