"""Which sealed segments a compaction merges: a contiguous run (merging keeps segment order, which
decides which copy of an id is live) of segments that are small or mostly dead."""

from __future__ import annotations

from vectorforge.engine.segment import Segment

__all__ = ["compaction_run"]


def compaction_run(sealed: list[Segment], max_points: int) -> list[Segment]:
    """The contiguous run of sealed segments worth merging (merging keeps segment order intact)."""
    run: list[Segment] = []
    total = 0
    best: list[Segment] = []
    for seg in sealed:
        small_or_dirty = seg.n < max_points // 2 or seg.n_live < 0.7 * seg.n
        if small_or_dirty and total + seg.n_live <= max_points:
            run.append(seg)
            total += seg.n_live
        else:
            if worth(run):
                best = run if len(run) > len(best) else best
            run, total = ([seg], seg.n_live) if small_or_dirty else ([], 0)
    if worth(run) and len(run) > len(best):
        best = run
    return best


def worth(run: list[Segment]) -> bool:
    return len(run) > 1 or (len(run) == 1 and run[0].n_live < 0.7 * run[0].n)
