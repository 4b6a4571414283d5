"""Which attention kernel a model uses for training and scoring, per platform.

`model.attention` is "auto" by default: cuDNN's fused flash attention on NVIDIA GPUs where its kernel takes
the model's shapes and dtype, the Splash (Pallas) kernel on TPUs where the sequence length and head dim fit
its blocks, XLA's einsum attention everywhere else (CPU, ROCm, float32 models on GPU, other shapes).
"xla", "dot_product" (jax.nn.dot_product_attention's XLA path), "cudnn" and "splash" force one. The choice
applies to causal attention over whole sequences (training, evaluation); decoding with a KV cache and scoring
left-padded rollouts always use the XLA path, which takes their masks.

The platform is read when the model is traced (jax.default_backend()), so a sweep planned on a CPU
submitter and trained on GPU or TPU workers gets their kernel there, and "auto" on CPU is exactly the "xla"
path. `lowering_for(platform)` traces as if on another platform, for jax.export from this machine.
"""
from __future__ import annotations

import jax
import jax.extend.backend

from scaling.config.model import ModelConfig, cudnn_shape_problem
from scaling.errors import UserError

# Splash tiles query and key sequences in blocks of a multiple of the TPU's 128 lanes.
SPLASH_LANES = 128
# A jit-cache-sensitive context: a step traced for one platform is not reused when exported for another.
_LOWERING_PLATFORM = jax.make_user_context(None)


def lowering_for(platform: str):
    """Context in which the model picks its kernel for `platform` ('cuda', 'tpu', ...) instead of this
    process's devices: what `jax.export(..., platforms=[platform])` from a CPU machine needs."""
    return _LOWERING_PLATFORM(platform)


def current_platform() -> str:
    """'cuda', 'rocm', 'tpu' or 'cpu': what the default devices are (JAX calls both GPU kinds 'gpu')."""
    if _LOWERING_PLATFORM.value is not None:
        return _LOWERING_PLATFORM.value
    backend = jax.extend.backend.get_backend()
    if backend.platform != "gpu":
        return backend.platform
    return "cuda" if "cuda" in backend.platform_version.lower() else "rocm"


def splash_shape_problem(cfg: ModelConfig, seq_len: int, auto: bool = False) -> str | None:
    """Why Splash cannot take this model's attention at `seq_len`, or None if it can. `auto` also asks for a
    head dim that is a multiple of 128: the lane width the kernel is tuned and proven for; the installed
    kernel pads smaller head dims, which "splash" may force but "auto" does not pick."""
    if seq_len % SPLASH_LANES:
        return f"it needs a sequence length that is a multiple of {SPLASH_LANES}, not {seq_len}"
    if auto and cfg.d_head % SPLASH_LANES:
        return f"auto picks it for a head_dim that is a multiple of {SPLASH_LANES}, not {cfg.d_head}"
    return None


def _auto_problem(cfg: ModelConfig, platform: str, seq_len: int) -> str | None:
    """Why "auto" does not take the platform's fused kernel (None: it does, or the platform has none)."""
    if platform == "cuda":
        problem = cudnn_shape_problem(cfg)
        return problem and f"not cudnn: {problem}"
    if platform == "tpu":
        problem = splash_shape_problem(cfg, seq_len, auto=True)
        return problem and f"not splash: {problem}"
    return None


def resolve_attention(cfg: ModelConfig, platform: str | None = None, seq_len: int | None = None) -> str:
    """The implementation `cfg` trains with on `platform` (default: this process's) at `seq_len` tokens per
    sequence (default: cfg.max_seq_len): "auto" made concrete.
    Raises UserError when the config forces a kernel the platform (or the sequence length) does not take."""
    platform = platform or current_platform()
    seq_len = seq_len or cfg.max_seq_len
    if cfg.attention == "cudnn" and platform != "cuda":
        raise UserError(f"model.attention: 'cudnn' (cuDNN flash attention) needs an NVIDIA GPU, but this process "
                        f"runs on {platform}; use 'auto' (cuDNN where available) or 'xla'")
    if cfg.attention == "splash":
        if platform != "tpu":
            raise UserError(f"model.attention: 'splash' (the Pallas TPU kernel) needs a TPU, but this process "
                            f"runs on {platform}; use 'auto' (Splash where available) or 'xla'")
        if problem := splash_shape_problem(cfg, seq_len):
            raise UserError(f"model.attention: 'splash' cannot run this model: {problem} (or use 'auto' or 'xla')")
    if cfg.attention != "auto":
        return cfg.attention
    if _auto_problem(cfg, platform, seq_len):
        return "xla"
    return {"cuda": "cudnn", "tpu": "splash"}.get(platform, "xla")


def available_attention(cfg: ModelConfig, platform: str | None = None, seq_len: int | None = None) -> str | None:
    """resolve_attention, or None where the config forces a kernel the platform lacks."""
    try:
        return resolve_attention(cfg, platform, seq_len)
    except UserError:
        return None


def describe_attention(cfg: ModelConfig, platform: str | None = None, seq_len: int | None = None) -> str:
    """One line for `scaling flops` and `--dry-run`: the kernel on `platform`, and why it was chosen."""
    platform = platform or current_platform()
    chosen = available_attention(cfg, platform, seq_len)
    if chosen is None and available_attention(cfg, platform, SPLASH_LANES):  # the platform has it, not this length
        return f"{cfg.attention} (set in model.attention), which cannot run at sequence length " \
               f"{seq_len or cfg.max_seq_len}: a run here is refused"
    if chosen is None:
        return f"{cfg.attention} (set in model.attention), which {platform} does not have: a run here is refused"
    if cfg.attention != "auto":
        return f"{chosen} (set in model.attention)"
    problem = _auto_problem(cfg, platform, seq_len or cfg.max_seq_len)
    return f"{chosen} (auto on {platform}" + (f"; {problem})" if problem else ")")
