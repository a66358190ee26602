"""Mirror symmetry and orientation of a data set, measured rather than assumed, and test-time mirroring.

Whether a horizontal flip keeps an image's class depends on the data: a photo of a dog facing left is still a dog,
a mirrored digit or letter is not a digit. A recipe that flips training images helps on the first kind and hurts on
the second, so the search finds out which kind it has:

- :func:`mirror_scores` scores a trained network on the validation images as they are, mirrored, and with the
  logits of both views averaged.
- :func:`looks_mirror_symmetric`: a network trained *without* flips, a quarter of the way from chance to 1 or
  more, that keeps most of its balanced accuracy on mirrored images (above chance, :data:`MIRROR_RETENTION` of it)
  has learned features that do not depend on the direction: the data set is mirror-symmetric, and flipping
  training images adds images of the same classes. Balanced accuracy (mean recall over the classes), because on
  imbalanced data a network that answers the commonest class scores the same plain accuracy in the mirror and
  would prove nothing; its chance level is 1 / classes for any constant answer.
- The same test upside down (each image flipped top to bottom): a network trained without vertical flips that keeps
  its balanced accuracy there sees orientation-free images (micrographs, satellite tiles, textures), where vertical
  flips and quarter turns add images of the same classes; photos of scenes, digits and text lose it.
- :func:`mirror_helps`: test-time mirroring is worth its doubled inference cost when the averaged view scores
  lower validation loss without losing accuracy.
- :class:`MirrorAverage` wraps a network so one graph (and its ONNX export) averages the logits of an image and its
  mirror image.

>>> looks_mirror_symmetric([(0.92, 0.31)], chance=0.1)  # digits: a mirrored 3 is no 3
False
>>> looks_mirror_symmetric([(0.80, 0.77)], chance=0.5)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas_core.fidelity import progress
from nas_core.trainer import balanced_accuracy, evaluate

MIRROR_RETENTION = 0.8  # of the accuracy above chance that mirrored images must keep for the data to count as symmetric
MIN_EVIDENCE_MARGIN = 0.1  # a network this little above chance says nothing about symmetry ...
# ... nor one less than this fraction of the way from chance to 1: early in training a network leans on colour and
# texture statistics that a mirror keeps. On bench.budget's scenes (seed 0: digits on photos, not symmetric) a plain
# network trained without flips kept 0.64-0.85 of its balanced accuracy above chance in the mirror while it was under
# 0.15 of the way (0.81 at 0.16 in a search, which then trained its references with flips: 0.76 against 0.85 on
# held-back images for the same final model without them), 0.66 at 0.22, 0.56 at 0.33 and about 0.3 from 0.5 on.
MIN_EVIDENCE_PROGRESS = 0.25


@dataclass(frozen=True, slots=True)
class MirrorScores:
    accuracy: float  # the images as they are
    mirrored_accuracy: float  # every image flipped left to right
    balanced_accuracy: float  # mean recall over the classes present
    mirrored_balanced_accuracy: float
    upside_down_balanced_accuracy: float  # every image flipped top to bottom
    averaged_accuracy: float  # the logits of both views averaged (test-time mirroring)
    loss: float
    averaged_loss: float


class MirrorAverage(nn.Module):
    """``network``'s logits averaged over an image and its mirror image, as one graph (two passes of the network:
    one batch of ``2N`` would tie the exported batch dimension to the example's)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> Tensor:
        return (self.network(x) + self.network(x.flip(-1))) * 0.5


def mirror_scores(model: nn.Module, x: Tensor, y: Tensor, *, mean: Sequence[float], std: Sequence[float],
                  device: torch.device | str) -> MirrorScores | None:
    """Scores of ``model`` (left in eval mode) on uint8 images ``x`` as they are, mirrored, and averaged; None
    without images."""
    if y.numel() == 0:
        return None
    y = y.to(device)
    accuracy, logits = evaluate(model, x, y, mean=mean, std=std, device=device)
    mirrored_accuracy, mirrored = evaluate(model, x.flip(-1), y, mean=mean, std=std, device=device)
    averaged = (logits + mirrored) * 0.5
    num_classes = logits.shape[1]
    return MirrorScores(accuracy=accuracy, mirrored_accuracy=mirrored_accuracy,
                        balanced_accuracy=balanced_accuracy(logits, y, num_classes)[0],
                        mirrored_balanced_accuracy=balanced_accuracy(mirrored, y, num_classes)[0],
                        upside_down_balanced_accuracy=balanced_accuracy(
                            evaluate(model, x.flip(-2), y, mean=mean, std=std, device=device)[1], y, num_classes)[0],
                        averaged_accuracy=(averaged.argmax(1) == y).float().mean().item(),
                        loss=F.cross_entropy(logits, y).item(), averaged_loss=F.cross_entropy(averaged, y).item())


def looks_mirror_symmetric(evidence: Iterable[tuple[float, float]], *, chance: float) -> bool | None:
    """Whether the data set is mirror-symmetric, from ``(balanced accuracy, mirrored balanced accuracy)`` pairs of
    networks trained without flips; the most accurate one decides. None when there is no such network clearly above
    ``chance`` (1 / classes): :data:`MIN_EVIDENCE_MARGIN` above it and :data:`MIN_EVIDENCE_PROGRESS` of the way
    from it to 1 (:func:`nas_core.fidelity.progress`). The same rule, given upside-down scores of networks trained
    without vertical flips, tells whether images are orientation-free.

    >>> looks_mirror_symmetric([(0.24, 0.213)], chance=0.1) is None  # 0.16 of the way: too early to tell
    True
    """
    usable = [(accuracy, mirrored) for accuracy, mirrored in evidence
              if accuracy - chance >= MIN_EVIDENCE_MARGIN and progress(accuracy, chance) >= MIN_EVIDENCE_PROGRESS]
    if not usable:
        return None
    accuracy, mirrored = max(usable)
    return mirrored - chance >= MIRROR_RETENTION * (accuracy - chance)


def mirror_helps(scores: MirrorScores | None) -> bool:
    """Test-time mirroring pays when averaging both views lowers validation loss and costs no accuracy."""
    return scores is not None and scores.averaged_loss < scores.loss and \
        scores.averaged_accuracy >= scores.accuracy
