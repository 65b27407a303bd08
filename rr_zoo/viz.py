"""Pictures of what a zoo entry has learnt: retrieval grids, relation-score heatmaps, 2-D embeddings.

One copy of the plotting code, shared by ``examples/quickstart.ipynb``, ``python -m examples.make_figures``
(the README's figures) and ``python -m training export --sample-figures`` (model cards).
Images are uint8 tensors (N, C, H, W); every ``plot_*`` function returns a matplotlib
:class:`~matplotlib.figure.Figure` built without pyplot (safe under any backend, nothing left
open); :func:`save_figure` writes it. Needs matplotlib, and scikit-learn for :func:`tsne`
(``pip install "rr-zoo[training]"``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from rr_zoo.api import get_entry, get_transform

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL.Image import Image

SAME, DIFFERENT = "tab:green", "tab:red"


@dataclass
class ImageSet:
    """Images with labels (same fields as ``training.data.ImageData``, which works wherever this does)."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    classes: list[str]

    def subset(self, index: torch.Tensor | Sequence[int]) -> ImageSet:
        """The images at ``index``, in that order."""
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], list(self.classes))

    def __len__(self) -> int:
        return self.images.shape[0]


def sample_images(count: int = 200) -> ImageSet:
    """CIFAR-10 images bundled with the package (no download needed).

    Args:
        count: How many of the 200 (20 per class); the first 20 hold two per class.
    """
    from rr_zoo.samples import load_sample_images

    images, labels, classes = load_sample_images(count)
    return ImageSet(torch.stack([pil_to_uint8(img) for img in images]), torch.tensor(labels), classes)


def split_alternate(data: ImageSet) -> tuple[ImageSet, ImageSet]:
    """(train, test): every other image of each class, so both halves hold every class equally."""
    rank = torch.zeros_like(data.labels)
    seen: dict[int, int] = {}
    for i, y in enumerate(data.labels.tolist()):
        rank[i] = seen.get(y, 0)
        seen[y] = rank[i].item() + 1
    return data.subset(torch.nonzero(rank % 2 == 0).flatten()), data.subset(torch.nonzero(rank % 2 == 1).flatten())


def load_cifar10(root: str | os.PathLike, train: bool = False, download: bool = False) -> ImageSet:
    """A CIFAR-10 split through ``torchvision.datasets.CIFAR10`` (``download=True`` needs internet, ~170 MB).

    Raises:
        RuntimeError: the files are not under ``root`` and ``download`` is False (or the download failed).
    """
    from torchvision.datasets import CIFAR10

    data = CIFAR10(os.fspath(root), train=train, download=download)
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, torch.tensor(data.targets, dtype=torch.long), list(data.classes))


def fixed_subset(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``size`` of ``n`` indices drawn at random with a fixed seed (not cherry-picked), sorted."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def pil_to_uint8(img: Image) -> torch.Tensor:
    """PIL image -> uint8 (C, H, W)."""
    from torchvision.transforms.functional import pil_to_tensor

    return pil_to_tensor(img)


def to_pil(image: torch.Tensor) -> Image:
    """uint8 (C, H, W) -> PIL image (RGB or L)."""
    from torchvision.transforms.functional import to_pil_image

    return to_pil_image(image)


def preprocess(images: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the normalised float batch entry ``name`` expects (its own transform)."""
    transform = get_transform(name)
    return torch.stack([transform(to_pil(img)) for img in images])


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, name: str, batch_size: int = 500) -> torch.Tensor:
    """(N, d) features of uint8 images through ``model`` in eval mode."""
    model.eval()
    return torch.cat([model(preprocess(images[i:i + batch_size], name))
                      for i in range(0, images.shape[0], batch_size)])


def augment_views(images: torch.Tensor, n_views: int, seed: int = 0,
                  scale: tuple[float, float] = (0.3, 1.0)) -> torch.Tensor:
    """``n_views`` random views of each image, image-major: views of image i are rows i*n_views ... .

    The paper's augmentations (RandomResizedCrop, flip, colour jitter 0.8/0.8/0.8/0.2 with p 0.8,
    grayscale p 0.2), except that crops keep at least ``scale[0]`` of the image (paper: 0.08) so
    that a person can still tell what the view shows. Seeded; the global RNG is left untouched.
    """
    from torchvision import transforms as T

    size = images.shape[-1]
    aug = T.Compose([T.RandomResizedCrop(size, scale=scale), T.RandomHorizontalFlip(),
                     T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8), T.RandomGrayscale(0.2)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([pil_to_uint8(aug(to_pil(img))) for img in images for _ in range(n_views)])


def nearest_neighbours(queries: torch.Tensor, gallery: torch.Tensor, k: int,
                       exclude: torch.Tensor | None = None) -> torch.Tensor:
    """(Q, k) indices of the ``k`` gallery features closest in cosine to each query.

    ``exclude[q]`` (optional) is a gallery index never returned for query q (the query itself).
    """
    sim = F.normalize(queries, dim=1) @ F.normalize(gallery, dim=1).t()
    if exclude is not None:
        sim[torch.arange(sim.shape[0]), exclude] = -2.0
    return sim.topk(k, dim=1).indices


@torch.no_grad()
def relation_matrix(backbone: nn.Module, head: nn.Module, images: torch.Tensor, name: str,
                    aggregation: str | None = None) -> torch.Tensor:
    """(n, n) relation scores of every ordered pair of ``images`` (uint8), via ``rr_zoo.relation_score``."""
    from rr_zoo.relation import relation_score

    aggregation = aggregation or get_entry(name).recipe["aggregation"]
    x = preprocess(images, name)
    n = x.shape[0]
    scores = relation_score(backbone, head, x.repeat_interleave(n, 0), x.repeat(n, 1, 1, 1), aggregation)
    return scores.view(n, n)


def tsne(features: torch.Tensor, seed: int = 0):
    """2-D t-SNE (numpy (N, 2)) of L2-normalised features; perplexity adapted to small N.

    Up to 1,000 points use the exact method: faster than Barnes-Hut there (500 points: ~5 s vs ~20 s
    on a busy 2-core CPU).
    """
    from sklearn.manifold import TSNE

    n = features.shape[0]
    perplexity = float(min(30, max(2, (n - 1) // 3)))
    method = "exact" if n <= 1000 else "barnes_hut"
    return TSNE(2, perplexity=perplexity, init="pca", method=method, random_state=seed).fit_transform(
        F.normalize(features.float(), dim=1).numpy())


# ----------------------------------------------------------------------------- plots
def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _show(ax, image: torch.Tensor, title: str | None = None, edge: str | None = None, fontsize: float = 6) -> None:
    arr = image.permute(1, 2, 0).numpy()
    if arr.shape[-1] == 1:
        ax.imshow(arr[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(arr, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(edge is not None)
        if edge is not None:
            side.set_edgecolor(edge)
            side.set_linewidth(2.5)
    if title:
        ax.set_title(title, fontsize=fontsize, pad=2)


def plot_images(images: ImageSet, n: int = 10, title: str = "") -> Figure:
    """The first ``n`` images in a row, titled with their class."""
    n = min(n, len(images))
    fig = _new_figure(0.8 * n, 1.1)
    for i, ax in enumerate(fig.subplots(1, n, squeeze=False)[0]):
        _show(ax, images.images[i], images.classes[int(images.labels[i])])
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def plot_retrieval(queries: ImageSet, gallery: ImageSet, neighbours: dict[str, torch.Tensor],
                   title: str = "") -> Figure:
    """One row per (query, model): the query, then its nearest gallery images (green: same class).

    Args:
        queries: The query images.
        gallery: The images searched.
        neighbours: Model label -> (Q, k) gallery indices, e.g. from :func:`nearest_neighbours`.
        title: Figure title.
    """
    models = list(neighbours)
    k = next(iter(neighbours.values())).shape[1]
    rows = len(queries) * len(models)
    fig = _new_figure(0.75 * (k + 1) + 0.9, 0.8 * rows + 0.5)
    axes = fig.subplots(rows, k + 1, squeeze=False)
    for q in range(len(queries)):
        qy = int(queries.labels[q])
        for m, label in enumerate(models):
            row = axes[q * len(models) + m]
            _show(row[0], queries.images[q], f"query: {queries.classes[qy]}" if m == 0 else None)
            row[0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
            hits = 0
            for col, j in enumerate(neighbours[label][q].tolist()):
                y = int(gallery.labels[j])
                hits += y == qy
                _show(row[col + 1], gallery.images[j], gallery.classes[y], SAME if y == qy else DIFFERENT, 5)
            row[-1].text(1.08, 0.5, f"{hits}/{k}", transform=row[-1].transAxes, fontsize=7, va="center")
    fig.suptitle(title or f"top-{k} cosine neighbours (green frame: same class as the query)", fontsize=8)
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.2, rect=(0.1, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig


def plot_relation(scores: torch.Tensor, views: torch.Tensor, n_views: int, title: str = "") -> Figure:
    """Heatmap of a relation-score matrix with the images along both axes.

    Args:
        scores: (n, n) scores in [0, 1] (:func:`relation_matrix`).
        views: The n uint8 images, image-major groups of ``n_views`` views of one image.
        n_views: Views per image (draws the blocks of same-image pairs).
        title: Figure title (default: mean scores of same- vs different-image pairs).
    """
    n = scores.shape[0]
    group = torch.arange(n) // n_views
    same = (group[:, None] == group[None]) & ~torch.eye(n, dtype=torch.bool)
    diff = group[:, None] != group[None]
    if not title:
        title = (f"relation score: views of the same image {scores[same].mean():.2f}, "
                 f"of different images {scores[diff].mean():.2f} (mean)")
    cell = 0.32
    fig = _new_figure(cell * (n + 1) + 1.0, cell * (n + 1) + 0.5)
    grid = fig.add_gridspec(n + 1, n + 2, width_ratios=[1] * (n + 1) + [0.5], wspace=0.05, hspace=0.05)
    heat = fig.add_subplot(grid[1:, 1:n + 1])
    im = heat.imshow(scores.numpy(), vmin=0, vmax=1, cmap="magma", interpolation="nearest")
    heat.set_xticks([])
    heat.set_yticks([])
    for b in range(n_views, n, n_views):
        heat.axhline(b - 0.5, color="white", linewidth=0.8)
        heat.axvline(b - 0.5, color="white", linewidth=0.8)
    for i in range(n):
        _show(fig.add_subplot(grid[0, i + 1]), views[i])
        _show(fig.add_subplot(grid[i + 1, 0]), views[i])
    bar = fig.colorbar(im, cax=fig.add_subplot(grid[1:, n + 1]))
    bar.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=8)
    fig.subplots_adjust(left=0.02, right=0.92, bottom=0.02, top=0.93)
    return fig


def plot_embedding(points: dict[str, object], labels: torch.Tensor, classes: Sequence[str],
                   title: str = "") -> Figure:
    """Side-by-side 2-D scatters (e.g. t-SNE of RR vs random-init features), coloured by class.

    Args:
        points: Panel label -> (N, 2) array of coordinates.
        labels: (N,) class indices.
        classes: Class names.
        title: Figure title.
    """
    import numpy as np

    labels = np.asarray(labels)
    fig = _new_figure(3.6 * len(points) + 1.4, 3.6)
    axes = fig.subplots(1, len(points), squeeze=False)[0]
    size = 6 if len(labels) > 200 else 30
    for ax, (label, xy) in zip(axes, points.items()):
        xy = np.asarray(xy)
        for c in np.unique(labels):
            sel = labels == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=size, color=f"C{int(c) % 10}", label=classes[int(c)])
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].legend(fontsize=6, markerscale=1.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def plot_feature_maps(image: torch.Tensor, maps: Sequence[torch.Tensor], n_channels: int = 6) -> Figure:
    """The input image, then per stage the ``n_channels`` most active channels of one feature map.

    Args:
        image: uint8 (C, H, W) input.
        maps: Per stage a (1, C_s, H_s, W_s) or (C_s, H_s, W_s) feature map of that image.
        n_channels: Channels shown per stage (ranked by mean activation).
    """
    fig = _new_figure(0.9 * (n_channels + 1), 0.95 * len(maps))
    axes = fig.subplots(len(maps), n_channels + 1, squeeze=False)
    for s, fmap in enumerate(maps):
        fmap = fmap.detach().float()
        fmap = fmap[0] if fmap.ndim == 4 else fmap
        if s == 0:
            _show(axes[s, 0], image, "input")
        else:
            axes[s, 0].axis("off")
        top = fmap.mean(dim=(1, 2)).argsort(descending=True)[:n_channels].tolist()
        axes[s, 1].set_ylabel(f"stage {s + 1}\n{fmap.shape[0]}×{fmap.shape[1]}×{fmap.shape[2]}", fontsize=6)
        for col in range(n_channels):
            ax = axes[s, col + 1]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(top):
                ax.imshow(fmap[top[col]].numpy(), cmap="viridis", interpolation="nearest")
                ax.set_title(f"ch {top[col]}", fontsize=5, pad=2)
            else:
                ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100, colors: int | None = None) -> Path:
    """Write ``fig`` as PNG, atomically and without metadata (equal figures give equal bytes).

    ``colors`` (e.g. 256) stores a palette PNG with that many colours: photo grids become ~3x smaller.
    """
    import io

    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    image = Image.open(buf).convert("RGB")
    if colors is not None:
        image = image.quantize(colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    from rr_zoo.atomic import atomic_write

    atomic_write(path, lambda fh: image.save(fh, format="png", optimize=True))
    return path


# ----------------------------------------------------------------------------- one entry's figures
def entry_figures(name: str, backbone: nn.Module, head: nn.Module, train: ImageSet, test: ImageSet,
                  out_dir: str | os.PathLike, *, aggregation: str | None = None, label: str = "RR",
                  random_backbone: nn.Module | None = None, suffix: str = "", n_queries: int = 4, k: int = 8,
                  n_relation_images: int = 6, n_views: int = 3, gallery_size: int = 5000,
                  seed: int = 0) -> dict[str, Path]:
    """Write the relation-score heatmap and the retrieval grid of one backbone (README, model cards).

    Args:
        name: Zoo entry (preprocessing, default aggregation).
        backbone: Feature extractor (``num_classes=0``).
        head: Its relation head.
        train: Gallery images for retrieval (a fixed random ``gallery_size`` subset is searched).
        test: Query images; the relation heatmap uses ``n_relation_images`` of them, one per class
            where possible, ``n_views`` views each.
        out_dir: Folder for ``relation_scores{suffix}.png`` and ``retrieval{suffix}.png``.
        aggregation: The head's aggregation (default: the entry's recipe).
        label: Row label of ``backbone`` in the retrieval grid.
        random_backbone: Also show this backbone's neighbours (default: a seeded random init).
        suffix: Appended to the file names.
        n_queries: Retrieval queries, drawn at random with ``seed`` (not cherry-picked).
        k: Neighbours per query.
        n_relation_images: Images in the heatmap.
        n_views: Views per image in the heatmap.
        gallery_size: Gallery images searched.
        seed: Seed of every random choice.

    Returns:
        ``{"relation": path, "retrieval": path}``.
    """
    from rr_zoo.api import create_model

    out_dir = Path(out_dir)
    train, test = (ImageSet(s.images, s.labels, list(s.classes)) for s in (train, test))
    if random_backbone is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random_backbone = create_model(name, pretrained=False)
    # heatmap: first test image of each class in a fixed random order, n_views views each
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed)).tolist()
    picked, seen = [], set()
    for i in order:
        if int(test.labels[i]) not in seen:
            picked.append(i)
            seen.add(int(test.labels[i]))
        if len(picked) == n_relation_images:
            break
    views = augment_views(test.images[picked], n_views, seed=seed)
    scores = relation_matrix(backbone, head, views, name, aggregation)
    fig = plot_relation(scores, views, n_views)
    relation = save_figure(fig, out_dir / f"relation_scores{suffix}.png", colors=256)
    # retrieval: RR vs random init on the same queries and gallery
    gallery = train.subset(fixed_subset(len(train), gallery_size, seed))
    queries = test.subset(fixed_subset(len(test), n_queries, seed + 1))
    scored = test.subset(fixed_subset(len(test), 1000, seed + 2))  # precision@k over many queries
    neighbours = {}
    for row_label, model in ((label, backbone), ("random init", random_backbone)):
        gallery_feats = embed(model, gallery.images, name)
        hits = gallery.labels[nearest_neighbours(embed(model, scored.images, name), gallery_feats, k)]
        precision = 100 * (hits == scored.labels[:, None]).float().mean().item()
        neighbours[f"{row_label}\nP@{k} {precision:.0f}%"] = nearest_neighbours(
            embed(model, queries.images, name), gallery_feats, k)
    fig = plot_retrieval(queries, gallery, neighbours,
                         f"{name}: top-{k} of {len(gallery):,} images by cosine similarity, queries drawn at random\n"
                         f"(green: the query's class; P@{k}: share of green over {len(scored):,} test queries)")
    retrieval = save_figure(fig, out_dir / f"retrieval{suffix}.png", colors=256)
    return {"relation": relation, "retrieval": retrieval}
