"""ColPali-style retrieval of PDF pages: each page rendered to an image, the image embedded as a grid
of patch vectors by a vision encoder, text queries scored against the patches by MaxSim.

The convention (a page collection):

    vectors={"patches": vf.Multi(dim, encoder=NAME), "rows": vf.Multi(dim)}

One point per page, id "<source>#<page>" (page from 0), payload {"source": file name, "page": i}.
"patches" holds every patch vector of the page (ColPali: 32 x 32 = 1,024, and the prompt's tokens);
"rows" holds one vector per row of the grid (the mean of the row's patches, normalized: 32 for
ColPali). A query searches "rows" first (`depth` candidates, 32 vectors a page instead of ~1,030),
then re-ranks those by exact MaxSim on "patches" (a `has_id` filter: one more search), so it works
the same embedded, sharded and over HTTP. `create_page_collection` makes such a collection; every
collection's methods `col.add_pages(pdf)` and `col.query_pages(text)` (and `col.query(text)` when
"patches" names a page encoder) fill and search it through `page_add` / `page_query` here, the one
implementation (the module functions `add_pages` / `query_pages` are the same with the collection
first). Over HTTP the rendering and encoding happen in the client: the server needs no encoder.

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
from vectorforge.errors import DimensionMismatch, EmbedderUnavailable, InvalidParameter, InvalidVector
from vectorforge.types import Hit, Multi, UpdateResult

__all__ = [
    "PATCHES",
    "ROWS",
    "ColPaliEncoder",
    "GriddedPageEncoder",
    "add_pages",
    "collection_page_encoder",
    "create_page_collection",
    "page_encoder_of",
    "page_add",
    "page_id",
    "page_query",
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


def _vectors(col: CollectionAPI) -> dict[str, Any]:
    """The collection's vectors as `info()` shows them (name: kind and settings)."""
    found: dict[str, Any] = col.info().get("vectors") or {}
    return found


def page_encoder_of(
    name: str, vectors: dict[str, Any], encoder: PageEncoder | str | None = None
) -> PageEncoder:
    """The page encoder of collection `name` whose vectors (as `info()["vectors"]` shows them) are
    `vectors`: `encoder` (a PageEncoder or a registered name), or None for the "patches" vector's
    own. InvalidParameter, naming what is missing, unless the collection has the page layout
    ("patches" and "rows" multi vectors of one dim) and the encoder embeds images of that dim."""
    layout = (
        f"a page collection has vectors={{{PATCHES!r}: vf.Multi(dim, encoder=...), {ROWS!r}: "
        "vf.Multi(dim)}: make one with create_page_collection"
    )
    patches = vectors.get(PATCHES)
    if patches is None or patches.get("kind") != "multi":
        raise InvalidParameter(f"collection {name!r} has no {PATCHES!r} vector (a multi vector); {layout}")
    if encoder is None:
        encoder = patches.get("encoder")
        if encoder is None:
            raise InvalidParameter(
                f"collection {name!r} names no encoder for {PATCHES!r}; pass encoder= (a PageEncoder)"
            )
    rows = vectors.get(ROWS)
    if rows is None or rows.get("kind") != "multi":
        raise InvalidParameter(f"collection {name!r} has no {ROWS!r} vector (a multi vector); {layout}")
    if rows.get("dim") != patches.get("dim"):
        raise InvalidParameter(
            f"collection {name!r}: {PATCHES!r} is {patches.get('dim')}-dimensional but {ROWS!r} is "
            f"{rows.get('dim')}-dimensional; {layout}"
        )
    found = get_token_encoder(encoder) if isinstance(encoder, str) else encoder
    if not isinstance(found, PageEncoder):
        raise InvalidParameter(
            f"token encoder {found.name!r} embeds no images (it is not a PageEncoder), so collection "
            f"{name!r} cannot take or search pages with it"
        )
    if found.dim != patches.get("dim"):
        raise DimensionMismatch(
            f"page encoder {found.name!r} makes {found.dim}-dimensional patches but collection "
            f"{name!r} holds {patches.get('dim')}-dimensional ones",
            expected=patches.get("dim"),
            got=found.dim,
        )
    return found


def collection_page_encoder(vectors: dict[str, Any]) -> PageEncoder | None:
    """The page encoder that `query(text)` uses on a collection whose vectors are `vectors`: the
    "patches" vector's encoder when the collection has the page layout and that encoder is a
    registered PageEncoder here; None if it is not a page collection (or the encoder is not
    known in this process)."""
    patches = vectors.get(PATCHES) or {}
    if patches.get("encoder") is None:
        return None
    try:
        return page_encoder_of("", vectors)
    except (InvalidParameter, EmbedderUnavailable, DimensionMismatch):
        return None


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
    `encoder`: a PageEncoder, a registered name, or None for the collection's "patches" encoder.
    The same as `col.add_pages(pdf_path, encoder=...)`. Nothing is written unless every page is
    rendered and embedded: a missing or broken file, or a collection without the page layout or
    an encoder, is refused (InvalidParameter) before anything changes."""
    options: dict[str, Any] = {"source": source, "dpi": dpi, "batch_size": batch_size}
    return page_add(col, _vectors(col), pdf_path, encoder, idempotency_key=idempotency_key, **options)


def page_add(
    col: CollectionAPI,
    vectors: dict[str, Any],
    pdf_path: str | Path,
    encoder: PageEncoder | str | None,
    *,
    source: str | None = None,
    dpi: int = DEFAULT_DPI,
    batch_size: int = 4,
    idempotency_key: str | None = None,
) -> UpdateResult:
    """`add_pages` with the collection's vectors known (as `info()["vectors"]` shows them): what
    the collections' `add_pages` runs."""
    if source is not None and (not isinstance(source, str) or not source):
        raise InvalidParameter(f"source must be a non-empty string, not {source!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidParameter(f"batch_size must be an int >= 1, not {batch_size!r}")
    found = page_encoder_of(col.name, vectors, encoder)
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
    offset: int = 0,
    filter: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    with_payload: bool = True,
    with_vectors: bool = False,
    consistency: str | None = None,
) -> list[Hit]:
    """The `k` pages that best match `text` (after skipping `offset`): the `depth` best by MaxSim on
    "rows" (default max(100, 10 (k + offset))), re-ranked by exact MaxSim on "patches" (scores: the
    patches' MaxSim). `params` and `consistency` go to both searches. The same as
    `col.query_pages(text, k, encoder=...)`, and as `col.query(text, k)` on a page collection."""
    options = {"params": params, "with_vectors": with_vectors, "consistency": consistency}
    return _query_pages(col, _vectors(col), text, encoder, k, depth, offset, filter, with_payload, options)


def page_query(
    col: CollectionAPI,
    vectors: dict[str, Any],
    text: str,
    k: int,
    encoder: PageEncoder | str | None,
    options: dict[str, Any],
) -> list[Hit]:
    """`query_pages` with the collection's vectors known (no `info()` call) and its keyword options
    in a dict (those of `query_pages`; any other is refused): what the collections' `query_pages`,
    and their `query(text)` on a page collection, run."""
    known = {"depth", "offset", "filter", "params", "with_payload", "with_vectors", "consistency"}
    if unknown := sorted(set(options) - known):
        raise InvalidParameter(f"a page query takes no {', '.join(map(repr, unknown))} option")
    search: dict[str, Any] = {
        key: options[key] for key in ("params", "with_vectors", "consistency") if key in options
    }
    return _query_pages(
        col,
        vectors,
        text,
        encoder,
        k,
        options.get("depth"),
        options.get("offset", 0),
        options.get("filter"),
        options.get("with_payload", True),
        search,
    )


def _query_pages(
    col: CollectionAPI,
    vectors: dict[str, Any],
    text: str,
    encoder: PageEncoder | str | None,
    k: int,
    depth: int | None,
    offset: int,
    filter: dict[str, Any] | None,
    with_payload: bool,
    options: dict[str, Any],
) -> list[Hit]:
    if not isinstance(text, str) or not text:
        raise InvalidParameter("query text must be a non-empty string")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameter(f"k must be an int >= 1, not {k!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameter(f"offset must be an int >= 0, not {offset!r}")
    depth = max(100, 10 * (k + offset)) if depth is None else depth
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < k + offset:
        raise InvalidParameter(f"depth must be an int >= k + offset ({k + offset}), not {depth!r}")
    found = page_encoder_of(col.name, vectors, encoder)
    query = found.encode_queries([text])[0]
    first_options: dict[str, Any] = {
        "params": options.get("params"),
        "consistency": options.get("consistency"),
    }
    first = col.search(query, depth, using=ROWS, filter=filter, with_payload=False, **first_options)
    if not first:
        return []
    only: dict[str, Any] = {"must": [{"has_id": [hit.id for hit in first]}]}
    if filter is not None:
        only["must"].append(filter)
    return col.search(
        query, k, using=PATCHES, offset=offset, filter=only, with_payload=with_payload, **options
    )


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
