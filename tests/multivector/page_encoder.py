"""A small, real page encoder for the tests: a torch module that cuts the rendered page into a grid
of patches and embeds each patch by its colour (soft memberships of 125 prototype colours, 128
numbers, unit length); a query's words that name colours (matplotlib's CSS4 names) embed as those
colours. So "red" finds the page with a red shape, and "red blue" the page that has both, by MaxSim
over patches: what ColPali does with what a page says, this does with what it shows. It is no
stand-in for ColPali's quality, only for its shapes and its path through vectorforge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib import colors

DIM = 128


class ColourFeatures(torch.nn.Module):
    """(n, 3) colours in [0, 1] -> (n, 128) unit vectors: a Gaussian bump around each of 5 x 5 x 5
    prototype colours, and 3 zeros."""

    def __init__(self, width: float = 0.15) -> None:
        super().__init__()
        levels = torch.linspace(0, 1, 5)
        grid = torch.cartesian_prod(levels, levels, levels)  # (125, 3)
        self.register_buffer("prototypes", grid)
        self.width = width

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(rgb, self.prototypes) ** 2
        bumps = torch.exp(-d2 / (2 * self.width**2))
        out = torch.nn.functional.pad(bumps, (0, DIM - bumps.shape[1]))
        return torch.nn.functional.normalize(out, dim=1)


class PatchColourEncoder(torch.nn.Module):
    """A page image -> (rows * cols, 128): the image resized to the grid times `patch` pixels,
    each patch's mean colour (average pooling), embedded by ColourFeatures, row-major."""

    def __init__(self, rows: int, cols: int, patch: int = 16) -> None:
        super().__init__()
        self.rows, self.cols, self.patch = rows, cols, patch
        self.pool = torch.nn.AvgPool2d(kernel_size=patch, stride=patch)
        self.features = ColourFeatures()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # (batch, 3, H, W) in [0, 1]
        means = self.pool(pixels)  # (batch, 3, rows, cols)
        flat = means.permute(0, 2, 3, 1).reshape(-1, 3)  # row-major patches
        return self.features(flat).reshape(pixels.shape[0], self.rows * self.cols, DIM)


class ColourPageEncoder:
    """The PageEncoder (and patch_grid) of the tests."""

    def __init__(self, rows: int = 12, cols: int = 8, patch: int = 16) -> None:
        self.rows, self.cols = rows, cols
        self.module = PatchColourEncoder(rows, cols, patch).eval()
        self.calls = 0

    @property
    def name(self) -> str:
        return "test-colours"

    @property
    def dim(self) -> int:
        return DIM

    def patch_grid(self, image: Any) -> tuple[int, int]:
        return self.rows, self.cols

    def _pixels(self, image: Any) -> torch.Tensor:
        size = (self.cols * self.module.patch, self.rows * self.module.patch)
        arr = np.asarray(image.convert("RGB").resize(size), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1)

    def encode_images(
        self, images: Sequence[Any], *, batch_size: int = 4, progress: bool = False
    ) -> list[np.ndarray]:
        self.calls += 1
        out: list[np.ndarray] = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = torch.stack([self._pixels(im) for im in images[start : start + batch_size]])
                out.extend(m.numpy().astype(np.float32) for m in self.module(batch))
        return out

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        out = []
        with torch.no_grad():
            for text in texts:
                named = [w for w in text.lower().replace(",", " ").split() if w in colors.CSS4_COLORS]
                if not named:
                    out.append(np.full((1, DIM), DIM**-0.5, dtype=np.float32))
                    continue
                rgb = torch.tensor([colors.to_rgb(w) for w in named], dtype=torch.float32)
                out.append(self.module.features(rgb).numpy().astype(np.float32))
        return out

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> list[np.ndarray]:
        return self.encode_queries(texts)
