"""`vectorforge cluster local`: a Ray cluster on this machine, for a drill (docs/distributed.md)."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from vectorforge.cli.common import console

__all__ = ["cluster_app"]

cluster_app = typer.Typer(help="Ray clusters for vectorforge.", no_args_is_help=True)


@cluster_app.command("local")
def local(
    workers: Annotated[int, typer.Option(min=1, max=16, help="worker nodes (2 CPUs each)")] = 3,
) -> None:
    """Start a head without CPUs and WORKERS worker nodes on loopback, print the address to join,
    and stop them on Ctrl-C (only this cluster's processes)."""
    from vectorforge.cluster.ray_local import start_cluster, stop_cluster

    console.print(f"starting a head and {workers} workers on 127.0.0.1 ...")
    cluster = start_cluster(workers=workers)
    try:
        console.print(
            f"Ray cluster up at {cluster.address} ({workers} workers); in another shell:\n"
            f"  vectorforge serve --data ./vf-data --cluster ray://{cluster.address}\n"
            "Ctrl-C stops it."
        )
        threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        console.print("stopping the cluster ...")
    finally:
        stop_cluster(cluster)
