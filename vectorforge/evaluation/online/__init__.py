"""Online evaluation: what live traffic says about retrieval quality, beside the offline metrics
of the gold sets. One module a job:

- `events`: the event schema (search, click, dwell, reformulation, success) and its SQLite store;
- `online_metrics`: CTR@k, MRR of clicks, abandonment, success@k ... per time window and segment;
- `experiments`: A/B tests and interleaving experiments, hashed assignment, their record;
- `experiment_stats`: the statistics of an experiment (z-test, Welch, bootstrap, delta method,
  CUPED, sample sizes, sequential monitoring);
- `interleaving`: team-draft interleaving and the attribution of clicks;
- `simulator`: a position-biased cascade click model over a gold set's judgments;
- `shadow`: mirrored traffic to a candidate, off the request path, and its overlap measures;
- `drift`: query and corpus drift on windows of embeddings.

See docs/online.md.
"""

from __future__ import annotations
