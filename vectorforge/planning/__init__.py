"""Capacity planning: a workload file in, a plan calibrated by vectorforge's own measurements out
(shards, replicas, nodes, instance type, monthly cost, what dominates, what-ifs). See docs/planning.md.

    from vectorforge.planning import load_workload, load_catalog, load_profile, plan
    w = load_workload("workload.yaml")
    p = plan(w, load_catalog(w.catalog), load_profile(w.profile))
"""

from __future__ import annotations

from vectorforge.planning.catalog import Catalog, Instance, load_catalog
from vectorforge.planning.planner import Plan, VectorChoice, plan, what_ifs
from vectorforge.planning.playbook import alert_rules, playbook_markdown
from vectorforge.planning.profile import CostModel, Measured, Profile, load_profile
from vectorforge.planning.report import FORMATS, plan_report, render
from vectorforge.planning.workload import Workload, load_workload, parse_workload

__all__ = [
    "FORMATS",
    "Catalog",
    "CostModel",
    "Instance",
    "Measured",
    "Plan",
    "Profile",
    "VectorChoice",
    "Workload",
    "alert_rules",
    "load_catalog",
    "load_profile",
    "load_workload",
    "parse_workload",
    "plan",
    "plan_report",
    "playbook_markdown",
    "render",
    "what_ifs",
]
