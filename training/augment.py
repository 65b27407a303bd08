"""Batched, device-side generation of K augmented views per image (the paper's view distribution).

Per view, independently (torchvision semantics): RandomResizedCrop(size, scale 0.08–1,
ratio 3/4–4/3, bilinear) -> horizontal flip (p 0.5) -> ColorJitter(0.8, 0.8, 0.8, 0.2)
in a random order, applied with p 0.8 -> RandomGrayscale(p 0.2) -> normalise. All views
of a batch are made with tensor ops on the images' device; the only Python loops run
over the four jitter stages. Crops are resized with bilinear sampling clamped to the
crop (what ``interpolate`` on the cropped tensor does); no antialiasing is applied when
a crop is larger than the output (never the case for the paper's datasets, where the
output side equals the image side). One-channel images: brightness and contrast apply;
saturation, hue and grayscale are identities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale
CROP_TRIES = 10


@dataclass(frozen=True)
class AugmentConfig:
    """Parameters of the view distribution (defaults: the paper's)."""

    size: int                      # output side in pixels
    mean: tuple[float, ...]        # per channel, [0, 1] units
    std: tuple[float, ...]
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"mean {self.mean} and std {self.std} need one value per channel")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {self.ratio}")
        for name in ("flip_p", "jitter_p", "grayscale_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if any(j < 0 for j in self.jitter) or self.jitter[3] > 0.5:
            raise ValueError(f"jitter must be >= 0 with hue <= 0.5, got {self.jitter}")


def _rand(n: int, gen: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device)


def _uniform(n: int, low: float, high: float, gen, device) -> torch.Tensor:
    return low + (high - low) * _rand(n, gen, device)


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 normalised images (the evaluation path, no augmentation)."""
    x = images.float().div_(255)
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def crop_boxes(n: int, height: int, width: int, scale, ratio, gen=None, device="cpu") -> torch.Tensor:
    """RandomResizedCrop boxes ``(top, left, h, w)`` for ``n`` views, torchvision's sampling.

    Ten tries per view are drawn at once; the first valid one is used, else the
    centre crop with the ratio clamped to the allowed range.
    """
    area = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    target = area * _uniform(n * CROP_TRIES, scale[0], scale[1], gen, device).view(n, CROP_TRIES)
    aspect = torch.exp(_uniform(n * CROP_TRIES, log_r[0], log_r[1], gen, device)).view(n, CROP_TRIES)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(valid.any(1), valid.float().argmax(1), torch.zeros_like(valid[:, 0], dtype=torch.long))
    w = w.gather(1, first[:, None]).squeeze(1)
    h = h.gather(1, first[:, None]).squeeze(1)
    ok = valid.any(1)
    # fallback: centre crop with the ratio clamped
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fh, fw = height, round(height * ratio[1])
    else:
        fw, fh = width, height
    w = torch.where(ok, w, torch.full_like(w, fw))
    h = torch.where(ok, h, torch.full_like(h, fh))
    u_top, u_left = _rand(n, gen, device), _rand(n, gen, device)
    top = torch.where(ok, torch.floor(u_top * (height - h + 1)), torch.full_like(h, (height - fh) // 2))
    left = torch.where(ok, torch.floor(u_left * (width - w + 1)), torch.full_like(w, (width - fw) // 2))
    return torch.stack([top, left, h, w], 1)


def resized_crops(x: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor) -> torch.Tensor:
    """Bilinear crop-and-resize of every image to ``size`` (optionally mirrored), one ``grid_sample`` call."""
    n, _, height, width = x.shape
    coords = torch.arange(size, device=x.device, dtype=x.dtype) + 0.5  # output pixel centres
    top, left, h, w = (boxes[:, i:i + 1].to(x.dtype) for i in range(4))
    u = torch.where(flip[:, None], size - coords[None, :], coords[None, :])
    src_x = (left + u * w / size - 0.5).clamp(min=left, max=left + w - 1)
    src_y = (top + coords[None, :] * h / size - 0.5).clamp(min=top, max=top + h - 1)
    gx = (src_x + 0.5) / width * 2 - 1     # align_corners=False normalised coordinates
    gy = (src_y + 0.5) / height * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(n, size, size), gy[:, :, None].expand(n, size, size)], dim=-1)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma with torchvision's weights; 1-channel input is returned as is."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = factor.view(-1, 1, 1, 1)
    return (f * a + (1 - f) * b).clamp_(0, 1)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Multiply by ``factor`` (N,), clamp to [0, 1]."""
    return (x * factor.view(-1, 1, 1, 1)).clamp(0, 1)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the per-image mean grey level."""
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the grayscale image (identity for 1 channel)."""
    if x.shape[1] == 1:
        return x
    return _blend(x, grayscale(x), factor)


# Sector floor(6h) of the hue circle, 0..6 (6 only at h == 1, where it is sector 0): R, G, B take
# (v, q, p, t)[_HSV_SECTORS[sector]] (torchvision's table, whose ``% 6`` the seventh row replaces)
_HSV_SECTORS = torch.tensor([[0, 3, 2], [1, 0, 2], [2, 0, 3], [2, 1, 0], [3, 2, 0], [0, 2, 1], [0, 3, 2]])


def _rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(h, s, v) planes of (N, 3, H, W) RGB in [0, 1], torchvision's formulas and values, bit for bit.

    The hue branch is picked with ``where`` rather than torchvision's sum of masked terms (the terms
    not picked are exact zeros, and a signed zero is lost at ``+ 1.0``).
    """
    r, g, b = x.unbind(1)
    maxc = x.amax(1)
    minc = x.amin(1)
    eqc = maxc == minc
    cr = maxc - minc
    s = cr / maxc.masked_fill(eqc, 1.0)
    cr_div = cr.masked_fill(eqc, 1.0)
    rc, gc, bc = (maxc - r) / cr_div, (maxc - g) / cr_div, (maxc - b) / cr_div
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    return torch.fmod(h / 6.0 + 1.0, 1.0), s, maxc


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB from (N, H, W) planes with h in [0, 1]: one gather from the four candidate planes."""
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    p = (v * (1.0 - s)).clamp(0, 1)
    q = (v * (1.0 - s * f)).clamp(0, 1)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0, 1)
    idx = torch.nn.functional.embedding(i.to(torch.int64), _HSV_SECTORS.to(i.device)).permute(0, 3, 1, 2)
    return torch.stack([v, q, p, t], 1).gather(1, idx)


def adjust_hue(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``factor`` (N,) in [-0.5, 0.5] turns (identity for 1 channel)."""
    if x.shape[1] == 1:
        return x
    h, s, v = _rgb_to_hsv(x)
    return _hsv_to_rgb(torch.remainder(h + factor.view(-1, 1, 1), 1.0), s, v)


JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(x: torch.Tensor, apply: torch.Tensor, cfg: AugmentConfig, gen=None) -> torch.Tensor:
    """ColorJitter on the views where ``apply`` is True, each with its own random op order and factors."""
    n = x.shape[0]
    dev = x.device
    b, c, s, h = cfg.jitter
    factors = torch.stack([
        _uniform(n, max(0.0, 1 - b), 1 + b, gen, dev), _uniform(n, max(0.0, 1 - c), 1 + c, gen, dev),
        _uniform(n, max(0.0, 1 - s), 1 + s, gen, dev), _uniform(n, -h, h, gen, dev)], 1)
    order = torch.rand(n, 4, generator=gen, device=dev).argsort(1)  # a uniform random permutation per view
    for stage in range(4):
        for op_index, op in enumerate(JITTER_OPS):
            idx = (apply & (order[:, stage] == op_index)).nonzero().squeeze(1)
            if idx.numel():
                x[idx] = op(x[idx], factors[idx, op_index])
    return x


def make_views(images: torch.Tensor, k: int, cfg: AugmentConfig, generator: torch.Generator | None = None,
               out_dtype: torch.dtype = torch.float32, channels_last: bool = False) -> torch.Tensor:
    """K independently augmented views of every image, view-major.

    Args:
        images: uint8 (M, C, H, W) on any device.
        k: Views per image.
        cfg: The view distribution.
        generator: Source of all randomness (on ``images.device``); None: the default generator.
        out_dtype: dtype of the returned views.
        channels_last: Return NHWC memory format.

    Returns:
        (K·M, C, size, size) normalised views; rows [v·M, (v+1)·M) hold view v of all M images.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (M, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if images.shape[1] != len(cfg.mean):
        raise ValueError(f"images have {images.shape[1]} channels but cfg.mean has {len(cfg.mean)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    m, channels, height, width = images.shape
    n = k * m
    dev = images.device
    x = images.float().div_(255).repeat(k, 1, 1, 1)
    boxes = crop_boxes(n, height, width, cfg.scale, cfg.ratio, generator, dev)
    flip = _rand(n, generator, dev) < cfg.flip_p
    x = resized_crops(x, boxes, cfg.size, flip)
    x = color_jitter(x, _rand(n, generator, dev) < cfg.jitter_p, cfg, generator)
    gray = _rand(n, generator, dev) < cfg.grayscale_p
    if channels > 1 and gray.any():
        x = torch.where(gray.view(-1, 1, 1, 1), grayscale(x).expand_as(x), x)
    mean = torch.tensor(cfg.mean, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std, device=dev).view(1, -1, 1, 1)
    x = ((x - mean) / std).to(out_dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
