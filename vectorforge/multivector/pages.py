"""ColPali-style retrieval of PDF pages: each page rendered to an image, the image embedded as a grid
of patch vectors by a vision encoder, text queries scored against the patches by MaxSim.

The convention (a page collection):

    vectors={"patches": vf.Multi(dim, encoder=NAME), "rows": vf.Multi(dim)}

One point per page, id "<source>#<page>" (page from 0), payload {"source": file name, "page": i}.
"patches" holds every patch vector of the page (ColPali: 32 x 32 = 1,024, and the prompt's tokens);
"rows" holds one vector per row of the grid (the mean of the row's patches, normalized: 32 for
ColPali). A query searches "rows" first (`depth` candidates, 32 vectors a page instead of ~1,030),
then re-ranks those by exact MaxSim on "patches" (a `has_id` filter: one more search), so it works
the same embedded, sharded and over HTTP. `create_page_collection` makes such a collection and
`add_pages` / `query_pages` fill and search it.

The encoder is any `PageEncoder` (embed/tokens.py) that can also tell its patch grid
(`patch_grid(image) -> (rows, cols)`): `ColPaliEncoder` adapts colpali-engine's models from a local
folder of weights. Retrieval quality is the encoder's: only real ColPali (or ColQwen) weights make
text queries find pages by what they say; the tests use a small colour encoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vectorforge.api import CollectionAPI, DatabaseAPI
from vectorforge.embed.tokens import PageEncoder, get_token_encoder
from vectorforge.errors import EmbedderUnavailable, InvalidParameter, InvalidVector
from vectorforge.types import Hit, Multi, UpdateResult

__all__ = [
    "PATCHES",
    "ROWS",
    "ColPaliEncoder",
    "GriddedPageEncoder",
    "add_pages",
    "create_page_collection",
    "page_id",
    "query_pages",
    "render_pages",
    "row_pool",
]

PATCHES = "patches"  # the vector of every patch of a page
ROWS = "rows"  # one vector per row of the page's patch grid (first stage)
DEFAULT_DPI = 96


@runtime_checkable
class GriddedPageEncoder(PageEncoder, Protocol):
    """A page encoder that tells the grid its patches come in (row-major, first in the matrix)."""

    def patch_grid(self, image: Any) -> tuple[int, int]:
        """(rows, cols) of the patch grid `encode_images` makes of `image`."""
        ...


# -- rendering ----------------------------------------------------------------------------------
def render_pages(pdf_path: str | Path, dpi: int = DEFAULT_DPI) -> list[Any]:
    """Every page of the PDF at `pdf_path` as an RGB PIL image, `dpi` dots per inch (pypdfium2)."""
    import pypdfium2 as pdfium

    path = Path(pdf_path)
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 1200:
        raise InvalidParameter(f"dpi must be an int from 10 to 1200, not {dpi!r}")
    if not path.is_file():
        raise InvalidParameter(f"no PDF file at {str(path)!r}")
    with path.open("rb") as handle:
        if handle.read(5) != b"%PDF-":
            raise InvalidParameter(f"{str(path)!r} is not a PDF file (it does not start with %PDF-)")
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise InvalidParameter(f"{str(path)!r} is not a readable PDF: {exc}") from exc
    try:
        images = []
        for i in range(len(document)):
            page = document[i]
            try:
                bitmap = page.render(scale=dpi / 72)
                images.append(bitmap.to_pil().convert("RGB"))
            finally:
                page.close()
        return images
    finally:
        document.close()


# -- row pooling --------------------------------------------------------------------------------
def row_pool(patches: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(rows, dim): the mean of each row of the first rows * cols patches (row-major), normalized.
    Tokens after the grid (ColPali's prompt tokens) take no part."""
    arr = np.asarray(patches, dtype=np.float32)
    if arr.ndim != 2:
        raise InvalidVector(f"patches are a (patches, dim) matrix, not shape {arr.shape}")
    if len(grid) != 2 or any(
        isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1 for v in grid
    ):
        raise InvalidParameter(f"grid is (rows, cols) of ints >= 1, not {grid!r}")
    rows, cols = int(grid[0]), int(grid[1])
    if len(arr) < rows * cols:
        raise InvalidVector(f"{len(arr)} patches do not fill a {rows} x {cols} grid")
    means = arr[: rows * cols].reshape(rows, cols, arr.shape[1]).mean(axis=1)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    pooled: np.ndarray = (means / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return pooled


def _grid(encoder: PageEncoder, image: Any, patches: np.ndarray) -> tuple[int, int]:
    if isinstance(encoder, GriddedPageEncoder):
        return encoder.patch_grid(image)
    side = math.isqrt(len(patches))
    if side * side != len(patches):
        raise InvalidParameter(
            f"encoder {encoder.name!r} has no patch_grid(image) and its {len(patches)} patches are "
            "not a square grid; give it a patch_grid method"
        )
    return side, side


# -- collections --------------------------------------------------------------------------------
def create_page_collection(
    db: DatabaseAPI, name: str, dim: int, *, encoder: str | None = None, **settings: Any
) -> CollectionAPI:
    """A collection of pages: "patches" (`vf.Multi(dim, encoder=encoder)`) and "rows" (`vf.Multi(dim)`)."""
    vectors = {PATCHES: Multi(dim=dim, encoder=encoder), ROWS: Multi(dim=dim)}
    return db.create_collection(name, vectors=vectors, **settings)


def _encoder_of(col: CollectionAPI, encoder: PageEncoder | str | None) -> PageEncoder:
    if encoder is None:
        spec = col.info().get("vectors", {}).get(PATCHES)
        if spec is None:
            raise InvalidParameter(
                f"collection {col.name!r} has no {PATCHES!r} vector; make it with create_page_collection"
            )
        encoder = spec.get("encoder")
        if encoder is None:
            raise InvalidParameter(
                f"collection {col.name!r} names no encoder for {PATCHES!r}; pass encoder= (a PageEncoder)"
            )
    found = get_token_encoder(encoder) if isinstance(encoder, str) else encoder
    if not isinstance(found, PageEncoder):
        raise InvalidParameter(f"token encoder {found.name!r} embeds no images (it is not a PageEncoder)")
    return found


def page_id(source: str, page: int) -> str:
    """The id of page `page` (from 0) of `source`: "<source>#<page>"."""
    return f"{source}#{page}"


def add_pages(
    col: CollectionAPI,
    pdf_path: str | Path,
    encoder: PageEncoder | str | None = None,
    *,
    source: str | None = None,
    dpi: int = DEFAULT_DPI,
    batch_size: int = 4,
    idempotency_key: str | None = None,
) -> UpdateResult:
    """Render every page of the PDF, embed it, and upsert one point per page (ids `page_id`, payload
    {"source": source or the file's name, "page": i}) with its patches and row-pooled vectors.
    `encoder`: a PageEncoder, a registered name, or None for the collection's "patches" encoder."""
    found = _encoder_of(col, encoder)
    images = render_pages(pdf_path, dpi=dpi)
    name = source if source is not None else Path(pdf_path).name
    if not images:
        raise InvalidParameter(f"{str(pdf_path)!r} has no pages")
    patches = found.encode_images(images, batch_size=batch_size)
    if len(patches) != len(images):
        raise InvalidVector(f"encoder {found.name!r} made {len(patches)} matrices for {len(images)} pages")
    rows = [row_pool(p, _grid(found, image, p)) for p, image in zip(patches, images, strict=True)]
    ids: list[str | int] = [page_id(name, i) for i in range(len(images))]
    payloads: list[dict[str, Any] | None] = [{"source": name, "page": i} for i in range(len(images))]
    return col.upsert(ids, {PATCHES: list(patches), ROWS: rows}, payloads, idempotency_key=idempotency_key)


def query_pages(
    col: CollectionAPI,
    text: str,
    encoder: PageEncoder | str | None = None,
    k: int = 10,
    *,
    depth: int | None = None,
    filter: dict[str, Any] | None = None,
    with_payload: bool = True,
) -> list[Hit]:
    """The `k` pages that best match `text`: the `depth` best by MaxSim on "rows" (default
    max(100, 10 k)), re-ranked by exact MaxSim on "patches" (scores: the patches' MaxSim)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameter(f"k must be an int >= 1, not {k!r}")
    depth = max(100, 10 * k) if depth is None else depth
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < k:
        raise InvalidParameter(f"depth must be an int >= k ({k}), not {depth!r}")
    found = _encoder_of(col, encoder)
    query = found.encode_queries([text])[0]
    first = col.search(query, depth, using=ROWS, filter=filter, with_payload=False)
    if not first:
        return []
    only: dict[str, Any] = {"must": [{"has_id": [hit.id for hit in first]}]}
    if filter is not None:
        only["must"].append(filter)
    return col.search(query, k, using=PATCHES, filter=only, with_payload=with_payload)


# -- colpali-engine -----------------------------------------------------------------------------
_PROCESSORS = {"ColQwen2_5": "ColQwen2_5_Processor", "ColQwen2_5Omni": "ColQwen2_5OmniProcessor"}


class ColPaliEncoder:
    """colpali-engine's ColPali (or ColQwen2 ...) from a local folder of weights, as a
    `GriddedPageEncoder`. Image matrices hold the image's patch vectors first, row-major (the grid),
    then the prompt's other tokens (ColPali scores them too); queries hold their non-padding tokens.

    colpali-engine is not a dependency of vectorforge: `pip install colpali-engine` (it needs
    torchvision and peft) with `torch==2.13.0` pinned, and the model's weights in `path`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        model_class: str = "ColPali",
        device: str = "cpu",
        name: str | None = None,
        torch_dtype: Any = None,
    ) -> None:
        try:
            import colpali_engine.models as models
            import torch
        except ImportError as exc:
            raise EmbedderUnavailable(
                f"ColPaliEncoder needs colpali-engine: pip install colpali-engine torch==2.13.0 ({exc})"
            ) from exc
        folder = Path(path)
        if not folder.is_dir():
            raise EmbedderUnavailable(
                f"no ColPali weights at {str(folder)!r} (a folder from from_pretrained)"
            )
        model_type = getattr(models, model_class, None)
        processor_type = getattr(models, _PROCESSORS.get(model_class, model_class + "Processor"), None)
        if model_type is None or processor_type is None:
            raise InvalidParameter(f"colpali-engine has no model class {model_class!r}")
        self._torch = torch
        self._model = model_type.from_pretrained(
            str(folder), torch_dtype=torch_dtype or torch.float32, local_files_only=True
        ).to(device)
        self._model.eval()
        self._processor = processor_type.from_pretrained(str(folder), local_files_only=True)
        self._device = device
        self._name = name or f"colpali:{folder.name}"
        self._dim = int(getattr(self._model, "dim", 128))

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def patch_grid(self, image: Any) -> tuple[int, int]:
        """(rows, cols) of the image's patches, from the processor (ColPali: 32 x 32)."""
        model = self._model
        if hasattr(model, "spatial_merge_size"):  # the Qwen2-VL family: a grid per image size
            cols, rows = self._processor.get_n_patches(
                image.size, spatial_merge_size=model.spatial_merge_size
            )
        else:
            patch = getattr(model, "patch_size", None) or model.config.vision_config.patch_size
            cols, rows = self._processor.get_n_patches(image.size, patch_size=patch)
        return int(rows), int(cols)

    def _run(self, batch: Any) -> Any:
        with self._torch.no_grad():
            return self._model(**batch.to(self._device)).float().cpu()

    def encode_images(
        self, images: Sequence[Any], *, batch_size: int = 4, progress: bool = False
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            chunk = list(images[start : start + batch_size])
            batch = self._processor.process_images(chunk)
            embeddings = self._run(batch)
            image_mask = self._processor.get_image_mask(batch).cpu()
            keep = batch["attention_mask"].cpu().bool()
            for i, image in enumerate(chunk):
                patches = embeddings[i][image_mask[i]]
                rows, cols = self.patch_grid(image)
                if len(patches) != rows * cols:
                    raise InvalidVector(f"{len(patches)} image tokens for a {rows} x {cols} patch grid")
                others = embeddings[i][keep[i] & ~image_mask[i]]
                out.append(np.concatenate([patches.numpy(), others.numpy()]).astype(np.float32))
        return out

    def _encode_texts(self, texts: Sequence[str], batch_size: int, queries: bool) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            process = self._processor.process_queries if queries else self._processor.process_texts
            batch = process(chunk)
            embeddings = self._run(batch)
            keep = batch["attention_mask"].cpu().bool()
            out.extend(embeddings[i][keep[i]].numpy().astype(np.float32) for i in range(len(chunk)))
        return out

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        return self._encode_texts(texts, batch_size, queries=True)

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> list[np.ndarray]:
        return self._encode_texts(texts, batch_size, queries=False)
