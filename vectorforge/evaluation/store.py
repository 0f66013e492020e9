"""Gold sets on disk, in the data folder: `evaluation/goldsets/<name>/<version>.json`, plus
`versions.json` listing the versions in the order they were saved (the last is the current one).

Files are written atomically and never rewritten: a version's file holds its content forever, so a
run that names a version can always be scored again.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vectorforge.errors import GoldSetNotFound, InvalidParameter
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.storage import fsio
from vectorforge.types import check_name

__all__ = ["GoldSetStore", "diff", "evaluation_root"]


def evaluation_root(data: str | Path) -> Path:
    """Where a data folder keeps gold sets and the evaluation history."""
    return Path(data).resolve() / "evaluation"


class GoldSetStore:
    """Versioned gold sets in a folder (usually `evaluation_root(data) / "goldsets"`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def save(self, goldset: GoldSet) -> tuple[str, bool]:
        """Store `goldset` as a version of its name; (version, whether it is new). Saving content
        that is already a version makes it the current one again."""
        name = check_name(goldset.name, "gold set")
        folder = self.root / name
        with self._lock:
            fsio.make_dirs(folder)
            versions = self._versions(name)
            new = not (folder / f"{goldset.version}.json").exists()
            if new:
                fsio.write_json_atomic(folder / f"{goldset.version}.json", goldset.to_json())
            entry = {
                "version": goldset.version,
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "queries": len(goldset.qrels),
                "judgments": sum(len(d) for d in goldset.qrels.values()),
                "description": goldset.description,
            }
            versions = [v for v in versions if v["version"] != goldset.version] + [entry]
            fsio.write_json_atomic(folder / "versions.json", versions)
            return goldset.version, new

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "versions.json").is_file())

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Each saved version, oldest first: version, saved_at, queries, judgments, description."""
        check_name(name, "gold set")
        versions = self._versions(name)
        if not versions:
            raise GoldSetNotFound(
                f"gold set {name!r} does not exist; `vectorforge goldset list` shows the ones that do",
                name=name,
            )
        return versions

    def get(self, name: str, version: str | None = None) -> GoldSet:
        """The current version of `name`, or the one whose version starts with `version`."""
        versions = self.versions(name)
        if version is None:
            chosen = versions[-1]["version"]
        else:
            matches = sorted({v["version"] for v in versions if v["version"].startswith(version)})
            if len(matches) != 1:
                known = ", ".join(v["version"] for v in versions)
                what = "matches no" if not matches else "is ambiguous among the"
                raise GoldSetNotFound(
                    f"version {version!r} {what} versions of gold set {name!r} ({known})",
                    name=name,
                    version=version,
                )
            chosen = matches[0]
        return GoldSet.from_json(json.loads((self.root / name / f"{chosen}.json").read_text()))

    def delete(self, name: str) -> None:
        self.versions(name)
        with self._lock:
            fsio.remove_tree(self.root / name)

    def _versions(self, name: str) -> list[dict[str, Any]]:
        path = self.root / name / "versions.json"
        if not path.is_file():
            return []
        versions: list[dict[str, Any]] = json.loads(path.read_text())
        return versions


def diff(old: GoldSet, new: GoldSet) -> dict[str, Any]:
    """What changed from `old` to `new`: queries added, removed or re-worded; judgments added,
    removed or re-graded; segment tags changed."""
    if old.name != new.name:
        raise InvalidParameter(f"diff compares versions of one gold set, not {old.name!r} and {new.name!r}")
    oq, nq = set(old.qrels), set(new.qrels)
    judgments: dict[str, list[Any]] = {"added": [], "removed": [], "regraded": []}
    for qid in sorted(oq & nq):
        a, b = old.qrels[qid], new.qrels[qid]
        judgments["added"] += [[qid, d, b[d]] for d in sorted(set(b) - set(a))]
        judgments["removed"] += [[qid, d, a[d]] for d in sorted(set(a) - set(b))]
        judgments["regraded"] += [[qid, d, a[d], b[d]] for d in sorted(set(a) & set(b)) if a[d] != b[d]]
    return {
        "from": old.version,
        "to": new.version,
        "queries_added": sorted(nq - oq),
        "queries_removed": sorted(oq - nq),
        "queries_reworded": sorted(q for q in oq & nq if old.queries[q] != new.queries[q]),
        "judgments": judgments,
        "segments_changed": sorted(
            q for q in oq & nq if dict(old.segments.get(q, {})) != dict(new.segments.get(q, {}))
        ),
    }
