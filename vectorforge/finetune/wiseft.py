"""WiSE-FT (Wortsman et al., 2022): interpolate the weights of the base and the tuned model,
`(1 - alpha) * base + alpha * tuned`. alpha 1 is the tuned model, 0 the base; in between keeps
more of what the base knew, which is what the forgetting guard sweeps."""

from __future__ import annotations

from pathlib import Path

from vectorforge.errors import InvalidParameter

__all__ = ["interpolate"]


def interpolate(base: str | Path, tuned: str | Path, alpha: float, out: str | Path) -> Path:
    """Save the interpolated model (sentence-transformers format) to `out` and return it."""
    if not 0 <= alpha <= 1:
        raise InvalidParameter(f"alpha must be between 0 and 1, got {alpha}")
    import torch
    from sentence_transformers import SentenceTransformer

    base_model = SentenceTransformer(str(base), device="cpu")
    tuned_model = SentenceTransformer(str(tuned), device="cpu")
    base_state, tuned_state = base_model.state_dict(), tuned_model.state_dict()
    if base_state.keys() != tuned_state.keys():
        raise InvalidParameter(
            f"{base} and {tuned} are not the same architecture: their weights differ in names"
        )
    mixed = {}
    with torch.no_grad():
        for name, tensor in tuned_state.items():
            b = base_state[name]
            mixed[name] = (1 - alpha) * b + alpha * tensor if tensor.is_floating_point() else tensor
    tuned_model.load_state_dict(mixed)
    tuned_model.save(str(out))
    return Path(out)
