"""Which attention kernel a model uses for training and scoring, per platform.

`model.attention` is "auto" by default: cuDNN's fused flash attention on NVIDIA GPUs where its kernel takes
the model's shapes and dtype, XLA's einsum attention everywhere else (CPU, TPU, ROCm, float32 models).
"xla", "dot_product" (jax.nn.dot_product_attention's XLA path) and "cudnn" force one. The choice applies to
causal attention over whole sequences (training, evaluation); decoding with a KV cache and scoring
left-padded rollouts always use the XLA path, which takes their masks.

The platform is read when the model is traced (jax.default_backend()), so a sweep planned on a CPU
submitter and trained on GPU workers gets cuDNN there, and "auto" on CPU is exactly the "xla" path.
"""
from __future__ import annotations

import jax
import jax.extend.backend

from scaling.config.model import ModelConfig, cudnn_shape_problem
from scaling.errors import UserError


def current_platform() -> str:
    """'cuda', 'rocm', 'tpu' or 'cpu': what the default devices are (JAX calls both GPU kinds 'gpu')."""
    backend = jax.extend.backend.get_backend()
    if backend.platform != "gpu":
        return backend.platform
    return "cuda" if "cuda" in backend.platform_version.lower() else "rocm"


def resolve_attention(cfg: ModelConfig, platform: str | None = None) -> str:
    """The implementation `cfg` trains with on `platform` (default: this process's): "auto" made concrete.
    Raises UserError when the config forces a kernel the platform does not have."""
    platform = platform or current_platform()
    if cfg.attention == "cudnn" and platform != "cuda":
        raise UserError(f"model.attention: 'cudnn' (cuDNN flash attention) needs an NVIDIA GPU, but this process "
                        f"runs on {platform}; use 'auto' (cuDNN where available) or 'xla'")
    if cfg.attention != "auto":
        return cfg.attention
    return "cudnn" if platform == "cuda" and cudnn_shape_problem(cfg) is None else "xla"


def available_attention(cfg: ModelConfig, platform: str | None = None) -> str | None:
    """resolve_attention, or None where the config forces a kernel the platform lacks."""
    try:
        return resolve_attention(cfg, platform)
    except UserError:
        return None


def describe_attention(cfg: ModelConfig, platform: str | None = None) -> str:
    """One line for `scaling flops` and `--dry-run`: the kernel on `platform`, and why it was chosen."""
    platform = platform or current_platform()
    chosen = available_attention(cfg, platform)
    if chosen is None:
        return f"{cfg.attention} (set in model.attention), which {platform} does not have: a run here is refused"
    if cfg.attention != "auto":
        return f"{chosen} (set in model.attention)"
    problem = cudnn_shape_problem(cfg) if platform == "cuda" else None
    return f"{chosen} (auto on {platform}" + (f"; not cudnn: {problem})" if problem else ")")
