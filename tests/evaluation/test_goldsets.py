"""Gold sets: content-hash versions, the store keeps every version, importers, segment rules, and
refusals that name the problem and store nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vectorforge.errors import GoldSetNotFound, InvalidName, InvalidParameter
from vectorforge.evaluation.goldsets import (
    GoldSet,
    from_beir,
    from_jsonl,
    from_tsv,
    segments_by_length,
    segments_by_prefix,
    segments_from_file,
)
from vectorforge.evaluation.store import GoldSetStore, diff

QUERIES = {"q1": "red apples", "q2": "green pears in winter", "q3": "one"}
QRELS = {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}, "q3": {"d1": 1}}


def gold(**changes: object) -> GoldSet:
    fields: dict[str, object] = {"name": "g", "queries": QUERIES, "qrels": QRELS, "segments": {}}
    fields.update(changes)
    return GoldSet(**fields)  # type: ignore[arg-type]


def test_version_is_the_content_hash_and_any_change_makes_a_new_one() -> None:
    a = gold()
    assert a.version == gold().version == gold(name="other", description="x").version  # content only
    assert len(a.version) == 12
    changed = [
        gold(queries={**QUERIES, "q1": "red apple"}),
        gold(qrels={**QRELS, "q1": {"d1": 1, "d2": 0}}),
        gold(qrels={**QRELS, "q1": {"d1": 2}}),
        gold(segments={"q1": {"lang": "en"}}),
    ]
    assert len({a.version, *(g.version for g in changed)}) == 5
    # the hash does not depend on the order of keys
    assert gold(qrels=dict(reversed(list(QRELS.items())))).version == a.version


def test_bad_gold_sets_are_refused_by_name() -> None:
    with pytest.raises(InvalidParameter, match="judged queries have no text"):
        gold(qrels={**QRELS, "q9": {"d1": 1}})
    with pytest.raises(InvalidParameter, match="grades are integers"):
        gold(qrels={"q1": {"d1": 1.5}})
    with pytest.raises(InvalidParameter, match="segments name 1 queries without judgments"):
        gold(segments={"q7": {"lang": "en"}})
    with pytest.raises(InvalidParameter, match="is not allowed"):
        gold(segments={"q1": {"all": "x"}})


def test_segment_queries_lists_all_first_then_each_tag() -> None:
    g = gold(segments={"q1": {"lang": "en"}, "q2": {"lang": "de", "topic": "fruit"}})
    assert g.segment_queries() == {
        "all": ["q1", "q2", "q3"],
        "lang=de": ["q2"],
        "lang=en": ["q1"],
        "topic=fruit": ["q2"],
    }
    assert g.with_segments("lang", {"q3": "fr"}).segments == {"q2": {"topic": "fruit"}, "q3": {"lang": "fr"}}


def test_store_keeps_every_version_and_the_last_saved_is_current(tmp_path: Path) -> None:
    store = GoldSetStore(tmp_path)
    v1, new1 = store.save(gold())
    v2, new2 = store.save(gold(qrels={**QRELS, "q3": {"d9": 1}}))
    assert new1 and new2 and v1 != v2
    assert store.get("g").version == v2
    assert store.get("g", v1[:5]).qrels == QRELS  # a prefix names a version; old content is intact
    assert [v["version"] for v in store.versions("g")] == [v1, v2]
    again, new = store.save(gold())  # the same content again: no new version, current once more
    assert (again, new) == (v1, False) and store.get("g").version == v1
    assert store.names() == ["g"]
    assert GoldSetStore(tmp_path).get("g", v2).version == v2  # read back by another store


def test_store_refusals(tmp_path: Path) -> None:
    store = GoldSetStore(tmp_path)
    with pytest.raises(GoldSetNotFound, match="goldset list"):
        store.get("nope")
    with pytest.raises(InvalidName):
        store.save(gold(name="../escape"))
    assert not any(tmp_path.parent.glob("escape*"))
    store.save(gold())
    with pytest.raises(GoldSetNotFound, match="matches no"):
        store.get("g", "ffff")


def test_diff_names_what_changed() -> None:
    old = gold()
    new = gold(
        queries={**QUERIES, "q1": "red apple", "q4": "new"},
        qrels={"q1": {"d1": 1, "d5": 1}, "q2": {"d3": 1}, "q4": {"d1": 1}},
        segments={"q2": {"lang": "en"}},
    )
    d = diff(old, new)
    assert d["queries_added"] == ["q4"] and d["queries_removed"] == ["q3"]
    assert d["queries_reworded"] == ["q1"] and d["segments_changed"] == ["q2"]
    assert d["judgments"] == {
        "added": [["q1", "d5", 1]],
        "removed": [["q1", "d2", 0]],
        "regraded": [["q1", "d1", 2, 1]],
    }


def test_beir_import_of_the_shared_sets(shared: Path) -> None:
    sci = from_beir(shared / "data" / "scifact", name="scifact")
    assert len(sci.qrels) == 300 and sum(len(d) for d in sci.qrels.values()) == 339
    train = from_beir(shared / "data" / "scifact", name="scifact", split="train")
    assert len(train.qrels) == 809 and not set(train.qrels) & set(sci.qrels)
    dbp = from_beir(shared / "data" / "dbpedia", name="dbpedia")
    sources = segments_by_prefix(dbp.judged)
    assert set(sources.values()) >= {"INEX_LD", "SemSearch_ES", "QALD2_tr", "TREC_Entity"}
    with pytest.raises(InvalidParameter, match="split 'dev' not found"):
        from_beir(shared / "data" / "scifact", name="x", split="dev")


def test_length_buckets_cover_every_query_in_order() -> None:
    queries = {f"q{i}": " ".join(["w"] * (1 + i % 9)) for i in range(90)}
    buckets = segments_by_length(queries, 3)
    assert set(buckets) == set(queries) and len(set(buckets.values())) == 3
    assert set(buckets.values()) == {"1-3 words", "4-6 words", "7-9 words"}
    assert set(segments_by_length({"a": "x y", "b": "z w"}, 3).values()) == {"2 words"}


def test_jsonl_and_tsv_imports_with_segment_fields(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "text": "alpha", "qrels": {"d1": 1}, "lang": "en"},
        {"id": "b", "text": "beta", "qrels": {"d2": 2, "d3": 0}, "lang": "de"},
    ]
    (tmp_path / "g.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    g = from_jsonl(tmp_path / "g.jsonl", name="g", segment_fields=["lang"])
    assert g.qrels == {"a": {"d1": 1}, "b": {"d2": 2, "d3": 0}}
    assert g.segments == {"a": {"lang": "en"}, "b": {"lang": "de"}}
    rows = ["query-id\tquery\tcorpus-id\tscore\ttenant", "a\talpha\td1\t1\tacme", "b\tbeta\td2\t2\tinitech"]
    (tmp_path / "g.tsv").write_text("\n".join(rows) + "\n")
    t = from_tsv(tmp_path / "g.tsv", name="g", segment_fields=["tenant"])
    assert t.qrels == {"a": {"d1": 1}, "b": {"d2": 2}} and t.segments["b"] == {"tenant": "initech"}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"id": "a", "text": "x"}\n', "line 1.*'qrels'"),
        ('{"id": "a", "text": "x", "qrels": {"d": "high"}}\n', "line 1.*not an integer"),
        ('{"id": "a", "text": "x", "qrels": {}}\n{"id": "a", "text": "y", "qrels": {}}\n', "appears twice"),
        ("not json\n", "line 1"),
    ],
)
def test_bad_jsonl_is_refused_with_the_line(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "bad.jsonl").write_text(content)
    with pytest.raises(InvalidParameter, match=match):
        from_jsonl(tmp_path / "bad.jsonl", name="g")


def test_bad_tsv_is_refused_with_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.tsv"
    p.write_text("query-id\tquery\tcorpus-id\n")
    with pytest.raises(InvalidParameter, match="lacks \\['score'\\]"):
        from_tsv(p, name="g")
    p.write_text("query-id\tquery\tcorpus-id\tscore\na\tx\td1\t1\na\tx\td1\t2\n")
    with pytest.raises(InvalidParameter, match="line 3: 'd1' is judged twice"):
        from_tsv(p, name="g")
    p.write_text("query-id\tquery\tcorpus-id\tscore\na\tx\td1\t1\na\ty\td2\t2\n")
    with pytest.raises(InvalidParameter, match="two different texts"):
        from_tsv(p, name="g")


def test_segment_mapping_files(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text('{"q1": "fruit", "q2": "veg"}')
    (tmp_path / "m.tsv").write_text("query-id\tsegment\nq1\tfruit\nq3\tother\n")
    assert segments_from_file(tmp_path / "m.json") == {"q1": "fruit", "q2": "veg"}
    assert segments_from_file(tmp_path / "m.tsv") == {"q1": "fruit", "q3": "other"}
    (tmp_path / "bad.tsv").write_text("q1\n")
    with pytest.raises(InvalidParameter, match="expected query-id<TAB>segment"):
        segments_from_file(tmp_path / "bad.tsv")
