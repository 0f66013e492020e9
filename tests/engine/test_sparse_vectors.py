"""A BM25 sparse vector beside the dense one, end to end on plain collections: filled by add(texts),
searched by query(text, using=...) and mode="hybrid", with the statistics of the whole collection,
through writes, deletes, seals, compactions, reopen, snapshot and restore, in memory, on disk and
over HTTP. The dense vectors come from the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.embed.analyzer import get_analyzer
from vectorforge.engine.fusion import rrf
from vectorforge.index.sparse import CorpusStats, SparseIndex

TEXTS = [
    "vitamin d deficiency and depression in adults",
    "breast cancer risk and brca1 mutations",
    "depression treatment with exercise",
    "vitamin c and the common cold",
    "the genetics of breast cancer",
    "sleep and depression",
    "exercise lowers blood pressure",
    "cold water swimming",
]
DIM = 384


def _collection(db: vf.DatabaseAPI, **options: object) -> vf.CollectionAPI:
    col = db.create_collection(
        "docs", embedder="minilm", index="flat", sparse={"bm25": vf.Sparse()}, **options
    )  # type: ignore[arg-type]
    col.add(TEXTS, ids=list(range(len(TEXTS))), payloads=[{"n": i} for i in range(len(TEXTS))])
    return col


def _oracle(texts: dict[int, str], query: str, k: int) -> list[tuple[int, float]]:
    """BM25 by the sparse index alone, over the live texts: the oracle for the collection."""
    analyzer = get_analyzer("english")
    ids = list(texts)
    index = SparseIndex()
    index.add(analyzer.encode([texts[i] for i in ids]))
    q = analyzer.counts(query)
    scores, rows = index.bm25(q, index.stats(q.indices.tolist()), k)
    return [(ids[r], float(s)) for r, s in zip(rows.tolist(), scores.tolist(), strict=True)]


def _hits(hits: list[vf.Hit]) -> list[tuple[object, float]]:
    return [(h.id, round(h.score, 6)) for h in hits]


def test_bm25_through_the_collection_equals_the_index(db: vf.DatabaseAPI) -> None:
    col = _collection(db)
    expected = _oracle(dict(enumerate(TEXTS)), "depression vitamin", 5)
    assert _hits(col.query("depression vitamin", k=5, using="bm25")) == [
        (i, round(s, 6)) for i, s in expected
    ]
    hit = col.query("brca1", k=1, using="bm25")[0]
    assert hit.id == 1 and hit.payload == {"n": 1, "text": TEXTS[1]}


def test_deletes_leave_the_statistics_and_filters_apply(db: vf.DatabaseAPI) -> None:
    col = _collection(db)
    col.delete(ids=[0, 3])
    live = {i: t for i, t in enumerate(TEXTS) if i not in (0, 3)}
    assert _hits(col.query("vitamin depression", k=8, using="bm25")) == [
        (i, round(s, 6)) for i, s in _oracle(live, "vitamin depression", 8)
    ]
    flt = {"must": [{"key": "n", "range": {"gte": 4}}]}
    assert {h.id for h in col.query("depression cancer", k=8, using="bm25", filter=flt)} == {4, 5}


def test_segments_seals_compaction_and_reopen_keep_bm25(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with vf.connect(str(data)) as db:
        col = db.create_collection(
            "docs", embedder="minilm", index="flat", sparse={"bm25": vf.Sparse()}, max_segment_points=3
        )
        for start in range(0, len(TEXTS), 2):  # several segments, sealed and compacted
            col.add(TEXTS[start : start + 2], ids=[start, start + 1])
        col.delete(ids=[2])
        col.optimize()
        before = _hits(col.query("depression exercise", k=8, using="bm25"))
    live = {i: t for i, t in enumerate(TEXTS) if i != 2}
    assert before == [(i, round(s, 6)) for i, s in _oracle(live, "depression exercise", 8)]
    with vf.connect(str(data)) as db:  # from segment files and the log
        assert _hits(db.get_collection("docs").query("depression exercise", k=8, using="bm25")) == before
        db.get_collection("docs").snapshot(tmp_path / "s.tar")
        copy = db.restore(tmp_path / "s.tar", name="copy")
        assert _hits(copy.query("depression exercise", k=8, using="bm25")) == before


def test_hybrid_fuses_the_dense_and_the_sparse_lists(db: vf.DatabaseAPI) -> None:
    col = _collection(db)
    dense = col.query("breast cancer genetics", k=100)
    sparse = col.query("breast cancer genetics", k=100, using="bm25")
    expected = list(rrf([{h.id: h.score for h in dense}, {h.id: h.score for h in sparse}]).items())[:3]
    hybrid = col.query("breast cancer genetics", k=3, mode="hybrid")
    assert [(h.id, round(h.score, 9)) for h in hybrid] == [(i, round(s, 9)) for i, s in expected]
    assert all(h.payload is not None for h in hybrid)


def test_points_written_without_text_have_no_sparse_vector(db: vf.DatabaseAPI) -> None:
    col = _collection(db)
    col.upsert([100], np.ones((1, DIM)), [{"n": 100}])  # a dense vector only
    assert 100 not in {h.id for h in col.query("depression", k=20, using="bm25")}
    assert col.count() == len(TEXTS) + 1


def test_bad_sparse_settings_and_names_are_refused(db: vf.DatabaseAPI) -> None:
    with pytest.raises(vf.InvalidParameter, match="vector name"):
        db.create_collection("bad", dim=4, sparse={"BM25": vf.Sparse()})
    with pytest.raises(vf.InvalidParameter, match=r"vf\.Sparse\(k1="):
        db.create_collection("bad", dim=4, sparse={"bm25": {"k1": -1}})
    col = _collection(db)
    with pytest.raises(vf.InvalidParameter, match="has no sparse vector 'title'"):
        col.query("x", using="title")
    with pytest.raises(vf.InvalidParameter, match="not both"):
        col.query("x", using="bm25", mode="hybrid")


def test_corpus_stats_are_those_of_the_live_points() -> None:
    stats = CorpusStats(3, 9.0, {1: 2}).merged(CorpusStats(1, 3.0, {1: 1, 2: 1}))
    assert (stats.docs, stats.total_length, stats.df) == (4, 12.0, {1: 3, 2: 1}) and stats.avg_length == 3.0


def test_hybrid_checks_k_and_offset_and_skips_vectors_without_an_analyzer(tmp_path: Path) -> None:
    with vf.connect() as db:
        col = db.create_collection(
            "docs",
            embedder="minilm",
            index="flat",
            sparse={"bm25": vf.Sparse(), "learned": vf.Sparse(modifier=None, analyzer=None)},
        )
        col.add(TEXTS, ids=list(range(len(TEXTS))))
        assert len(col.query("depression", k=3, mode="hybrid")) == 3  # "learned" has no analyzer: left out
        for bad in ({"k": -1}, {"k": 0}, {"offset": -1}, {"k": "3"}):
            with pytest.raises(vf.InvalidParameter):
                col.query("depression", mode="hybrid", **bad)  # type: ignore[arg-type]
        first = col.query("depression", k=6, mode="hybrid")
        assert col.query("depression", k=3, offset=3, mode="hybrid") == first[3:]


def test_readers_side_by_side_see_whole_postings() -> None:
    """Each build of the postings is published whole: threads that query while a build happens
    get one build or the other, never a mix (a review found offsets from one build used on another)."""
    import threading

    index = SparseIndex()
    analyzer = get_analyzer("english")
    index.add(analyzer.encode(TEXTS[:4]))
    q = analyzer.counts("depression vitamin cancer")
    index.add(analyzer.encode(TEXTS[4:]))
    expected = index.bm25(q, index.stats(q.indices.tolist()), 8)
    index.add([])  # invalidates: the next readers race to rebuild
    results: list[object] = []

    def read() -> None:
        scores, rows = index.bm25(q, index.stats(q.indices.tolist()), 8)
        results.append((scores.tolist(), rows.tolist()))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == (expected[0].tolist(), expected[1].tolist()) for r in results)


@pytest.mark.parametrize("damage", ["missing", "float-lengths", "negative-values"])
def test_a_restore_refuses_a_damaged_sparse_file(tmp_path: Path, damage: str) -> None:
    import io
    import tarfile

    with vf.connect(str(tmp_path / "d")) as db:
        col = _collection(db)
        snapshot = col.snapshot(tmp_path / "s.tar")
        files: dict[str, bytes] = {}
        with tarfile.open(snapshot) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() else None
                if f is not None:
                    files[m.name] = f.read()
        name = next(n for n in files if n.endswith("sparse-bm25.npz"))
        if damage == "missing":
            del files[name]
        else:
            with np.load(io.BytesIO(files[name])) as data:
                parts = {k: data[k] for k in data.files}
            if damage == "float-lengths":
                parts["lengths"] = parts["lengths"].astype(np.float64)
            else:
                parts["values"] = -parts["values"]
            out = io.BytesIO()
            np.savez(out, **parts)
            files[name] = out.getvalue()
        bad = tmp_path / "bad.tar"
        with tarfile.open(bad, "w") as tar:
            for member, content in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        with pytest.raises(vf.InvalidParameter, match=r"sparse-bm25\.npz"):
            db.restore(bad, name="copy")
        assert "copy" not in db.list_collections()


def test_a_bad_sparse_setting_says_what_and_how() -> None:
    with pytest.raises(vf.InvalidParameter, match=r"vf.Sparse\(k1=...\).*k1=1.2 \(0 to 10\)"):
        vf.Sparse(k1=-1)
    with vf.connect() as db:
        col = db.create_collection("plain", dim=4)
        with pytest.raises(vf.InvalidParameter, match="named vectors are set at creation"):
            col.query("x", using="bm25")


def test_weighted_hybrid_takes_one_weight_per_list(db: vf.DatabaseAPI) -> None:
    col = _collection(db)
    dense = [h.id for h in col.query("depression and exercise", 5)]
    only_dense = col.query("depression and exercise", 5, mode="hybrid", fusion="weighted", weights=[1.0, 0.0])
    assert [h.id for h in only_dense] == dense
    only_bm25 = col.query("depression and exercise", 3, mode="hybrid", fusion="weighted", weights=[0.0, 1.0])
    assert [h.id for h in only_bm25] == [h.id for h in col.query("depression and exercise", 3, using="bm25")]
    with pytest.raises(vf.InvalidParameter, match="one non-negative weight per list"):
        col.query("x", mode="hybrid", fusion="weighted", weights=[1.0])
    with pytest.raises(vf.InvalidParameter, match="weights= goes with"):
        col.query("x", weights=[1.0, 1.0])
    for bad in (["1", 1.0], [float("nan"), 1.0], [True, 1.0]):
        with pytest.raises(vf.InvalidParameter, match="weights"):
            col.query("x", mode="hybrid", fusion="weighted", weights=bad)
