"""ColPali-style page retrieval (multivector/pages.py) on real PDFs made here (matplotlib), rendered
by pdfium and embedded by a small real vision encoder (page_encoder.py): the right page ranks first,
the two-stage search equals exhaustive MaxSim, embedded, sharded and over HTTP."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

import vectorforge as vf
from tests.inprocess import InProcessTransport
from tests.multivector.page_encoder import DIM, ColourPageEncoder
from vectorforge.embed.tokens import register_token_encoder
from vectorforge.errors import EmbedderUnavailable, InvalidParameter, InvalidVector
from vectorforge.multivector import pages
from vectorforge.multivector.pages import (
    ColPaliEncoder,
    add_pages,
    create_page_collection,
    query_pages,
    render_pages,
    row_pool,
)
from vectorforge.remote import RemoteDatabase
from vectorforge.server.app import create_app
from vectorforge.server.deps import ServerSettings

# what each page shows: (colour, shape, x, y) on white, and a line of black text
PAGES = [
    [("red", "square", 0.3, 0.6)],
    [("green", "circle", 0.5, 0.5)],
    [("blue", "square", 0.2, 0.2)],
    [("gold", "circle", 0.7, 0.3)],
    [("red", "circle", 0.3, 0.7), ("blue", "square", 0.6, 0.2)],
    [],  # text only
]


def make_pdf(path: Path, spec: list[list[tuple[str, str, float, float]]] = PAGES) -> Path:
    with PdfPages(path) as pdf:
        for i, shapes in enumerate(spec):
            fig = Figure(figsize=(4, 6))
            ax = fig.add_axes((0, 0, 1, 1))
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_axis_off()
            for colour, shape, x, y in shapes:
                if shape == "square":
                    ax.add_patch(Rectangle((x - 0.15, y - 0.1), 0.3, 0.2, color=colour))
                else:
                    ax.add_patch(Circle((x, y), 0.15, color=colour))
            ax.text(0.05, 0.95, f"Page {i + 1}: a report about shapes", fontsize=8, color="black")
            pdf.savefig(fig)
    return path


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "report.pdf")


@pytest.fixture(params=["memory", "sharded", "in-process"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "in-process":
        served = vf.connect(tmp_path / "served")
        client = RemoteDatabase(
            "http://in-process",
            transport=InProcessTransport(create_app(ServerSettings(served, None, require_keys=False))),
        )
        yield client
        client.close()
        served.close()
        return
    local = vf.connect(tmp_path / "d" if request.param == "sharded" else None)
    local.sharded = request.param == "sharded"  # type: ignore[attr-defined]
    yield local
    local.close()


def pages_of(db: Any, name: str = "pages", **options: Any) -> Any:
    if getattr(db, "sharded", False):
        options.setdefault("shards", 2)
    return create_page_collection(db, name, DIM, **options)


def test_render_pages(pdf: Path) -> None:
    images = render_pages(pdf, dpi=50)
    assert len(images) == len(PAGES)
    assert {im.size for im in images} == {(200, 300)}  # 4 x 6 inches at 50 dpi
    assert all(im.mode == "RGB" for im in images)
    # the red square of page 1 is red in the rendering (y grows downwards in the image)
    assert images[0].getpixel((int(0.3 * 200), int(0.4 * 300))) == (255, 0, 0)
    assert images[5].getpixel((100, 150)) == (255, 255, 255)
    assert render_pages(pdf, dpi=100)[0].size == (400, 600)


def test_render_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match=r"no PDF file at '.*missing\.pdf'"):
        render_pages(tmp_path / "missing.pdf")
    text = tmp_path / "notes.pdf"
    text.write_text("just text")
    with pytest.raises(InvalidParameter, match=r"'.*notes\.pdf' is not a PDF file"):
        render_pages(text)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n garbage with no objects")
    with pytest.raises(InvalidParameter, match=r"'.*broken\.pdf' is not a readable PDF"):
        render_pages(broken)
    with pytest.raises(InvalidParameter, match="no PDF file"):
        render_pages(tmp_path)  # a folder
    with pytest.raises(InvalidParameter, match="dpi must be an int from 10 to 1200"):
        render_pages(make_pdf(tmp_path / "ok.pdf"), dpi=0)


def test_row_pool() -> None:
    rng = np.random.default_rng(0)
    patches = rng.standard_normal((3 * 4 + 2, 5)).astype(np.float32)  # a 3 x 4 grid and 2 more tokens
    rows = row_pool(patches, (3, 4))
    assert rows.shape == (3, 5) and rows.dtype == np.float32
    for r in range(3):
        mean = patches[4 * r : 4 * r + 4].mean(axis=0)
        assert np.allclose(rows[r], mean / np.linalg.norm(mean), atol=1e-6)
    assert np.allclose(row_pool(np.zeros((4, 2)), (2, 2)), 0)
    with pytest.raises(InvalidVector, match="11 patches do not fill a 3 x 4 grid"):
        row_pool(patches[:11], (3, 4))
    with pytest.raises(InvalidParameter, match="grid is"):
        row_pool(patches, (0, 4))
    with pytest.raises(InvalidVector, match="a \\(patches, dim\\) matrix"):
        row_pool(patches[0], (1, 5))


def test_pages_are_found_by_what_they_show(db: Any, pdf: Path) -> None:
    encoder = ColourPageEncoder()
    col = pages_of(db)
    result = add_pages(col, pdf, encoder)
    assert result.count == len(PAGES) and col.count() == len(PAGES)
    record = col.get(["report.pdf#4"], with_vectors=True)[0]
    assert record.payload == {"source": "report.pdf", "page": 4}
    assert np.asarray(record.vectors["patches"]).shape == (12 * 8, DIM)
    assert np.asarray(record.vectors["rows"]).shape == (12, DIM)
    for text, page in (("red", 0), ("green", 1), ("blue", 2), ("gold", 3), ("red blue", 4)):
        hits = query_pages(col, text, encoder, k=3)
        assert hits[0].id == f"report.pdf#{page}", (text, [(h.id, h.score) for h in hits])
        assert hits[0].payload == {"source": "report.pdf", "page": page}
    # "red" alone: the two pages with red first, the one with more red ahead
    assert [h.id for h in query_pages(col, "red", encoder, k=2)] == ["report.pdf#0", "report.pdf#4"]
    # a filter narrows both stages
    only = {"must": [{"key": "page", "range": {"gte": 1}}]}
    assert query_pages(col, "red", encoder, k=1, filter=only)[0].id == "report.pdf#4"


def exhaustive(col: Any, query: np.ndarray, k: int) -> list[tuple[Any, float]]:
    """MaxSim over every page's patches, by hand from the stored vectors."""
    records = col.scroll(10_000, with_vectors=True).records
    scores = []
    for r in records:
        patches = np.asarray(r.vectors["patches"], dtype=np.float32)
        scores.append((r.id, float((query @ patches.T).max(axis=1).sum())))
    return sorted(scores, key=lambda s: (-s[1], str(s[0])))[:k]


def test_two_stages_equal_exhaustive_maxsim_when_deep_enough(db: Any, tmp_path: Path) -> None:
    """Twelve pages of random shapes and colours: with depth >= the pages, first stage on rows then
    re-ranking on patches is the exhaustive MaxSim ranking; with a shallow first stage, the
    re-ranked hits are the exhaustive order of the candidates the rows found."""
    rng = np.random.default_rng(5)
    palette = ["red", "green", "blue", "gold", "purple", "orange", "cyan", "black"]
    spec = [
        [
            (str(rng.choice(palette)), str(rng.choice(["square", "circle"])), *rng.uniform(0.2, 0.8, 2))
            for _ in range(int(rng.integers(1, 4)))
        ]
        for _ in range(12)
    ]
    encoder = ColourPageEncoder(rows=10, cols=6)
    col = pages_of(db, "random")
    add_pages(col, make_pdf(tmp_path / "random.pdf", spec), encoder, source="r")
    for text in ("red", "blue gold", "purple orange cyan", "black"):
        q = encoder.encode_queries([text])[0]
        got = [(h.id, h.score) for h in query_pages(col, text, encoder, k=5, depth=12)]
        want = exhaustive(col, q, 5)
        assert [g[0] for g in got] == [w[0] for w in want]
        assert np.allclose([g[1] for g in got], [w[1] for w in want], atol=1e-4)
        shallow = query_pages(col, text, encoder, k=3, depth=4)
        first = [h.id for h in col.search(q, 4, using="rows")]
        ranked = [w[0] for w in exhaustive(col, q, 12) if w[0] in first][:3]
        assert [h.id for h in shallow] == ranked


def test_the_collections_encoder_is_used_by_name(tmp_path: Path, pdf: Path) -> None:
    encoder = ColourPageEncoder()
    register_token_encoder("test-colours", lambda: encoder)
    db = vf.connect()
    col = create_page_collection(db, "named", DIM, encoder="test-colours")
    add_pages(col, pdf)
    assert encoder.calls == 1
    assert query_pages(col, "green", k=1)[0].id == "report.pdf#1"
    plain = db.create_collection("plain", vectors={"patches": vf.Multi(dim=DIM)})
    with pytest.raises(InvalidParameter, match="names no encoder for 'patches'; pass encoder="):
        add_pages(plain, pdf)
    other = db.create_collection("other", dim=4)
    with pytest.raises(InvalidParameter, match="has no 'patches' vector"):
        query_pages(other, "red")
    with pytest.raises(InvalidParameter, match="depth must be an int >= k"):
        query_pages(col, "red", encoder, k=5, depth=2)
    with pytest.raises(InvalidParameter, match="k must be an int >= 1"):
        query_pages(col, "red", encoder, k=0)
    with pytest.raises(InvalidParameter, match="no PDF file"):
        add_pages(col, tmp_path / "nope.pdf", encoder)
    db.close()


def test_colpali_encoder_without_colpali_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "colpali_engine", None)  # not installed (import fails)
    with pytest.raises(EmbedderUnavailable, match="needs colpali-engine: pip install colpali-engine"):
        ColPaliEncoder(tmp_path)


class _Batch(dict[str, Any]):
    def to(self, device: str) -> _Batch:
        return self


def fake_colpali(grid: tuple[int, int], prompt: int) -> types.ModuleType:
    """colpali_engine.models as the adapter uses it, with a torch model of the same outputs: an
    image becomes `prompt` text tokens after grid[0] * grid[1] image tokens (ColPali's order is
    the reverse for ColQwen; the adapter reorders), padded to the batch's longest."""
    import torch

    rows, cols = grid

    class Model(torch.nn.Module):
        dim = 8
        patch_size = 14

        @classmethod
        def from_pretrained(cls, path: str, **kwargs: Any) -> Model:
            return cls()

        def forward(self, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
            out = torch.nn.functional.one_hot(input_ids % 8, 8).float() * attention_mask[..., None]
            return out

    class Processor:
        image_token_id = 7

        @classmethod
        def from_pretrained(cls, path: str, **kwargs: Any) -> Processor:
            return cls()

        def process_images(self, images: list[Any]) -> _Batch:
            ids = torch.tensor([[1] * prompt + [7] * (rows * cols) for _ in images])
            return _Batch(input_ids=ids, attention_mask=torch.ones_like(ids))

        def process_queries(self, texts: list[str]) -> _Batch:
            longest = max(len(t.split()) for t in texts)
            ids = torch.tensor([[2] * len(t.split()) + [0] * (longest - len(t.split())) for t in texts])
            return _Batch(input_ids=ids, attention_mask=(ids != 0).long())

        process_texts = process_queries

        def get_image_mask(self, batch: _Batch) -> Any:
            return batch["input_ids"] == self.image_token_id

        def get_n_patches(self, image_size: tuple[int, int], patch_size: int) -> tuple[int, int]:
            return cols, rows

    module = types.ModuleType("colpali_engine.models")
    module.ColPali = Model  # type: ignore[attr-defined]
    module.ColPaliProcessor = Processor  # type: ignore[attr-defined]
    return module


def test_colpali_encoder_adapts_colpali_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pdf: Path
) -> None:
    """The adapter's bookkeeping against colpali-engine's interface (a stand-in module: the real
    package and weights are not installed here): image tokens first and as many as the grid, the
    prompt's tokens after them, padding dropped from queries."""
    package = types.ModuleType("colpali_engine")
    models = fake_colpali((4, 3), prompt=2)
    package.models = models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "colpali_engine", package)
    monkeypatch.setitem(sys.modules, "colpali_engine.models", models)
    encoder = ColPaliEncoder(tmp_path, name="fake")
    assert isinstance(encoder, pages.GriddedPageEncoder) and encoder.dim == 8 and encoder.name == "fake"
    images = render_pages(pdf, dpi=20)[:2]
    assert encoder.patch_grid(images[0]) == (4, 3)
    matrices = encoder.encode_images(images, batch_size=1)
    assert [m.shape for m in matrices] == [(14, 8), (14, 8)]
    assert np.array_equal(matrices[0][:12].argmax(axis=1), [7] * 12)  # the image's tokens first
    assert np.array_equal(matrices[0][12:].argmax(axis=1), [1, 1])
    queries = encoder.encode_queries(["one two three", "one"])
    assert [q.shape for q in queries] == [(3, 8), (1, 8)]
    col = create_page_collection(vf.connect(), "fake", 8)
    add_pages(col, pdf, encoder, dpi=20)
    assert np.asarray(col.get(["report.pdf#0"], with_vectors=True)[0].vectors["rows"]).shape == (4, 8)
    with pytest.raises(EmbedderUnavailable, match="no ColPali weights at"):
        ColPaliEncoder(tmp_path / "absent")
    with pytest.raises(InvalidParameter, match="no model class 'ColNothing'"):
        ColPaliEncoder(tmp_path, model_class="ColNothing")


# -- the collection methods: col.add_pages(pdf), col.query(text), col.query_pages(text) -----------
class WordsEncoder:
    """A text-only token encoder (no encode_images): what a page collection must refuse."""

    name = "test-words"
    dim = DIM

    def encode_queries(self, texts: Any, *, batch_size: int = 32) -> list[np.ndarray]:
        return [np.full((2, DIM), DIM**-0.5, dtype=np.float32) for _ in texts]

    def encode_documents(
        self, texts: Any, *, batch_size: int = 32, progress: bool = False
    ) -> list[np.ndarray]:
        return self.encode_queries(texts)


@pytest.fixture
def colours() -> ColourPageEncoder:
    """The colour encoder, registered as "test-colours" (the in-process server shares the registry)."""
    encoder = ColourPageEncoder()
    register_token_encoder("test-colours", lambda: encoder)
    register_token_encoder("test-words", WordsEncoder)
    return encoder


def make(db: Any, name: str, **settings: Any) -> Any:
    if getattr(db, "sharded", False):
        settings.setdefault("shards", 2)
    return db.create_collection(name, **settings)


def test_page_methods_end_to_end(db: Any, pdf: Path, colours: ColourPageEncoder) -> None:
    """add_pages / query / query_pages as methods, embedded, sharded and over HTTP: the same pages
    and scores as the module functions."""
    col = pages_of(db, encoder="test-colours")
    result = col.add_pages(pdf)
    assert result.count == len(PAGES) and col.count() == len(PAGES)
    assert colours.calls == 1
    record = col.get(["report.pdf#4"], with_vectors=True)[0]
    assert record.payload == {"source": "report.pdf", "page": 4}
    assert np.asarray(record.vectors["rows"]).shape == (12, DIM)
    for text, page in (("red", 0), ("green", 1), ("blue", 2), ("gold", 3), ("red blue", 4)):
        hits = col.query(text, k=3)
        assert hits[0].id == f"report.pdf#{page}", (text, [(h.id, h.score) for h in hits])
        assert hits[0].payload == {"source": "report.pdf", "page": page}
        same = col.query_pages(text, 3)
        module = query_pages(col, text, k=3)
        assert [(h.id, h.score) for h in same] == [(h.id, h.score) for h in hits]
        assert [(h.id, h.score) for h in module] == [(h.id, h.score) for h in hits]
    assert [h.id for h in col.query("red", k=2)] == ["report.pdf#0", "report.pdf#4"]
    assert [h.id for h in col.query("red", k=1, offset=1)] == ["report.pdf#4"]
    only = {"must": [{"key": "page", "range": {"gte": 1}}]}
    assert col.query("red", k=1, filter=only)[0].id == "report.pdf#4"
    assert col.query_pages("red", 1, filter=only, depth=2)[0].id == "report.pdf#4"
    bare = col.query("green", k=1, with_payload=False, consistency="eventual")[0]
    assert bare.id == "report.pdf#1" and bare.payload is None
    with pytest.raises(InvalidParameter, match=r"depth must be an int >= k \+ offset \(4\)"):
        col.query("red", k=3, offset=1, depth=2)
    # a second file with source=: its own ids; the first file's pages stay
    col.add_pages(make_pdf(pdf.parent / "other.pdf", [[("purple", "circle", 0.5, 0.5)]]), source="o")
    assert col.count() == len(PAGES) + 1
    assert col.query("purple", k=1)[0].id == "o#0"


def test_page_methods_with_an_encoder_object(db: Any, pdf: Path) -> None:
    """A collection whose "patches" names no encoder (a server that has no page encoder): the
    encoder is passed to add_pages and query_pages, which render and encode in the caller."""
    encoder = ColourPageEncoder()
    col = pages_of(db, "bare")
    col.add_pages(pdf, encoder=encoder, dpi=60)
    assert encoder.calls == 1 and col.count() == len(PAGES)
    assert col.query_pages("gold", 1, encoder=encoder)[0].id == "report.pdf#3"
    with pytest.raises(InvalidParameter, match=r"query_pages\(text, encoder=\.\.\.\) with a page encoder"):
        col.query("gold")  # no encoder by name: query(text) cannot embed the text
    with pytest.raises(InvalidParameter, match="names no encoder for 'patches'; pass encoder="):
        col.query_pages("gold")


def test_bad_pages_input_is_refused_and_changes_nothing(
    db: Any, pdf: Path, tmp_path: Path, colours: ColourPageEncoder
) -> None:
    col = pages_of(db, encoder="test-colours")
    col.add_pages(pdf)
    before = col.scroll(100, with_vectors=True).records
    calls = colours.calls
    with pytest.raises(InvalidParameter, match=r"no PDF file at '.*missing\.pdf'"):
        col.add_pages(tmp_path / "missing.pdf")
    notes = tmp_path / "notes.pdf"
    notes.write_text("just text")
    with pytest.raises(InvalidParameter, match=r"'.*notes\.pdf' is not a PDF file"):
        col.add_pages(notes)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n garbage with no objects")
    with pytest.raises(InvalidParameter, match=r"'.*broken\.pdf' is not a readable PDF"):
        col.add_pages(broken)
    with pytest.raises(InvalidParameter, match="dpi must be an int from 10 to 1200"):
        col.add_pages(pdf, dpi=5)
    with pytest.raises(InvalidParameter, match="source must be a non-empty string"):
        col.add_pages(pdf, source="")
    with pytest.raises(vf.DimensionMismatch, match=r"makes 128-dimensional patches but .* holds 64"):
        narrow = make(db, "narrow", vectors={"patches": vf.Multi(dim=64), "rows": vf.Multi(dim=64)})
        narrow.add_pages(pdf, encoder=colours)
    assert colours.calls == calls  # nothing was embedded
    after = col.scroll(100, with_vectors=True).records
    assert [(r.id, r.payload) for r in after] == [(r.id, r.payload) for r in before]
    assert all(
        np.array_equal(a.vectors["patches"], b.vectors["patches"]) for a, b in zip(after, before, strict=True)
    )

    # collections that are not page collections: refused, naming what is missing, left empty
    plain = make(db, "plain", vectors={"patches": vf.Multi(dim=DIM), "rows": vf.Multi(dim=DIM)})
    with pytest.raises(InvalidParameter, match="'plain' names no encoder for 'patches'; pass encoder="):
        plain.add_pages(pdf)
    dense = make(db, "dense", dim=4)
    with pytest.raises(InvalidParameter, match=r"'dense' has no 'patches' vector .*create_page_collection"):
        dense.add_pages(pdf, encoder=colours)
    with pytest.raises(InvalidParameter, match="'dense' has no 'patches' vector"):
        dense.query_pages("red", encoder=colours)
    no_rows = make(db, "no-rows", vectors={"patches": vf.Multi(dim=DIM, encoder="test-colours")})
    with pytest.raises(InvalidParameter, match="'no-rows' has no 'rows' vector"):
        no_rows.add_pages(pdf)
    words = make(
        db, "words", vectors={"patches": vf.Multi(dim=DIM, encoder="test-words"), "rows": vf.Multi(dim=DIM)}
    )
    with pytest.raises(InvalidParameter, match=r"'test-words' embeds no images \(it is not a PageEncoder\)"):
        words.add_pages(pdf)
    with pytest.raises(InvalidParameter, match="has no dense vector"):
        words.query("red")  # not a page collection: query(text) is the text path's, which says so
    assert colours.calls == calls
    for other in (plain, dense, no_rows, words):
        assert other.count() == 0
