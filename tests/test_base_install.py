"""The base install: vectorforge into a fresh virtualenv with only its base dependencies (each at
the lock file's version), no torch, no Ray, no FastAPI; the README's five-minute tour runs there,
and what needs an extra says which one."""

from __future__ import annotations

import json
import re
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CHECK = r"""
import json, sys, time
began = time.perf_counter()
import vectorforge as vf
seconds = time.perf_counter() - began
heavy = [m for m in ("torch", "ray", "fastapi", "sentence_transformers", "scipy", "sklearn")
         if m in sys.modules]
found = {}
for module in ("torch", "ray", "fastapi", "scipy"):
    try:
        __import__(module)
        found[module] = True
    except ImportError:
        found[module] = False
try:
    vf.connect().create_collection("n", embedder="minilm")
    embed_error = None
except vf.VectorForgeError as exc:
    embed_error = str(exc)
try:  # token pooling needs scipy: refused when the collection is made, never half-way through a write
    vf.connect().create_collection(
        "p", vectors={"t": vf.Multi(dim=8, index="plaid", index_params={"pool_factor": 2})}
    )
    pool_error = None
except vf.VectorForgeError as exc:
    pool_error = str(exc)
print(json.dumps({"import_s": seconds, "heavy": heavy, "installed": found, "embed_error": embed_error,
                  "pool_error": pool_error}))
"""


def tour(folder: Path) -> str:
    """The README's five-minute tour, writing into `folder`."""
    readme = (REPO / "README.md").read_text()
    code = re.search(r"## Five-minute tour\n\n```python\n(.*?)```", readme, re.S)
    assert code, "the README lost its five-minute tour"
    return code.group(1).replace("./vf-data", str(folder))


@pytest.mark.timeout(900)
def test_the_base_package_runs_the_embedded_tour_without_torch_or_ray(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(REPO / "requirements.txt"), str(REPO)],
        capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    script = tmp_path / "tour.py"
    script.write_text(tour(tmp_path / "data"))
    ran = subprocess.run(
        [str(python), str(script)], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    checked = subprocess.run(
        [str(python), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    report = json.loads(checked.stdout.strip().splitlines()[-1])
    assert report["installed"] == {"torch": False, "ray": False, "fastapi": False, "scipy": False}
    assert report["heavy"] == []
    assert report["embed_error"] and "pip install 'vectorforge[embed]'" in report["embed_error"]
    assert report["pool_error"] and "token pooling needs scipy" in report["pool_error"]
    size = sum(f.stat().st_size for f in (env_dir / "lib").rglob("*") if f.is_file())
    print(f"base install: {size / 2**20:.0f} MiB; import vectorforge: {report['import_s']:.2f} s")


def test_a_missing_optional_module_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from vectorforge.errors import MissingExtra
    from vectorforge.extras import missing_extra

    def scipy_missing(name: str, *args: object) -> object:
        return None if name == "scipy" else real(name, *args)

    real = importlib.util.find_spec
    with pytest.raises(ModuleNotFoundError, match=r"scipy\.cluster"), missing_extra("pooling"):
        # installed here, so a failure inside it is a real error, not a missing extra
        raise ModuleNotFoundError("No module named 'scipy.cluster'", name="scipy.cluster")
    monkeypatch.setattr(importlib.util, "find_spec", scipy_missing)
    with (
        pytest.raises(
            MissingExtra, match=r"token pooling needs scipy.cluster: pip install 'vectorforge\[eval\]'"
        ),
        missing_extra("token pooling"),
    ):
        raise ModuleNotFoundError("No module named 'scipy.cluster'", name="scipy.cluster")
    with pytest.raises(MissingExtra, match=r"vectorforge\[embed\]"), missing_extra("pooling", "embed"):
        raise ModuleNotFoundError("No module named 'scipy'", name="scipy")
    with pytest.raises(ModuleNotFoundError, match="nosuchthing"), missing_extra("x"):  # not ours to name
        raise ModuleNotFoundError("No module named 'nosuchthing'", name="nosuchthing")
