"""Typed model and mesh configs. Field names are the paper's symbols where one exists (nanodo style):
V vocabulary, D width, L layers, H heads, F MLP width. Cross-field checks run here, before any
array is built, so an impossible model fails with one line naming the field.
"""
from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from scaling.config.base import StrictModel


class MoEConfig(StrictModel):
    """Mixture-of-experts MLP, used every `every` layers (the last layer of each group of `every`)."""

    model_config = ConfigDict(frozen=True)  # hashable: it is part of the static model graph

    n_experts: int = Field(8, ge=1)
    top_k: int = Field(2, ge=1)
    d_expert: int = Field(..., ge=1, description="hidden width of each routed expert")
    n_shared_experts: int = Field(0, ge=0, description="always-on experts of width d_expert (DeepSeek)")
    every: int = Field(1, ge=1, description="an MoE MLP every k layers; the others are dense")
    router: Literal["softmax", "sigmoid"] = "softmax"
    normalize_top_k: bool = True
    dispatch: Literal["dropless", "capacity"] = "dropless"
    capacity_factor: float = Field(1.25, gt=0)
    load_balance_weight: float = Field(0.01, ge=0, description="Switch-style auxiliary loss weight")
    router_z_weight: float = Field(1e-3, ge=0)
    aux_free_bias: bool = Field(False, description="DeepSeek-V3 auxiliary-loss-free bias (updated outside the optimizer)")
    bias_update_rate: float = Field(1e-3, ge=0)

    @model_validator(mode="after")
    def _check(self):
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k: {self.top_k} exceeds n_experts={self.n_experts}")
        return self


class ModelConfig(StrictModel):
    model_config = ConfigDict(frozen=True)  # hashable: it is part of the static model graph

    name: str = "custom"
    V: int = Field(258, ge=2, description="vocabulary size (padded up to a multiple of 128 when built)")
    D: int = Field(..., ge=1, description="model width")
    L: int = Field(..., ge=1, description="layers")
    H: int = Field(..., ge=1, description="attention heads")
    KV: int | None = Field(None, ge=1, description="key/value heads (grouped-query attention); default H")
    head_dim: int | None = Field(None, ge=1, description="default D // H")
    F: int = Field(..., ge=1, description="MLP hidden width")
    max_seq_len: int = Field(1024, ge=1)
    mlp: Literal["swiglu", "gelu"] = "swiglu"
    norm: Literal["rms", "layer"] = "rms"
    pos: Literal["rope", "learned"] = "rope"
    rope_theta: float = Field(10_000.0, gt=0)
    qk_norm: bool = False
    tie_embeddings: bool = False
    z_loss: float = Field(0.0, ge=0)
    init_std: float = Field(0.02, gt=0)
    # "auto": cuDNN flash attention on NVIDIA GPUs, Splash on TPUs, where they take the shapes; XLA elsewhere
    # (model/attention_impl.py)
    attention: Literal["auto", "xla", "dot_product", "cudnn", "splash"] = "auto"
    remat: Literal["none", "full", "dots", "dots_no_batch"] = "none"
    scan_layers: bool = True
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    # Storage dtype of the trainable parameters (and so of gradients and Adam moments); compute is `dtype`.
    param_dtype: Literal["float32", "bfloat16"] = "float32"
    moe: MoEConfig | None = None

    @property
    def n_kv_heads(self) -> int:
        return self.KV or self.H

    @property
    def block_layers(self) -> int:
        """Layers per block (scanned together): `moe.every` for MoE models (k-1 dense + 1 MoE), else 1."""
        return self.moe.every if self.moe else 1

    @property
    def d_head(self) -> int:
        return self.head_dim or self.D // self.H

    @property
    def padded_vocab(self) -> int:
        """Vocab rounded up to 128 so the output matmul tiles well; extra logits are masked out."""
        return -(-self.V // 128) * 128 if self.V > 128 else self.V

    def is_moe_layer(self, layer: int) -> bool:
        return self.moe is not None and (layer + 1) % self.moe.every == 0

    @model_validator(mode="after")
    def _check(self):
        if self.head_dim is None and self.D % self.H:
            raise ValueError(f"H: width D={self.D} is not divisible by {self.H} heads (or set head_dim)")
        if self.H % self.n_kv_heads:
            raise ValueError(f"KV: {self.n_kv_heads} kv-heads do not divide H={self.H} heads")
        if self.pos == "rope" and self.d_head % 2:
            raise ValueError(f"head_dim: {self.d_head} must be even for rotary embeddings")
        if self.moe is not None and self.L % self.moe.every:
            raise ValueError(f"moe.every: L={self.L} layers is not a multiple of {self.moe.every}")
        if self.attention == "cudnn" and cudnn_shape_problem(self, CUDNN_MAX_HEAD_DIM_HOPPER):
            raise ValueError(f"attention: 'cudnn' cannot run this model: "
                             f"{cudnn_shape_problem(self, CUDNN_MAX_HEAD_DIM_HOPPER)} (or use 'auto' or 'xla')")
        return self


# cuDNN's fused attention kernel takes head dims that are multiples of 8 up to 128 (256 from Hopper on).
CUDNN_MAX_HEAD_DIM = 128
CUDNN_MAX_HEAD_DIM_HOPPER = 256


def cudnn_shape_problem(cfg: ModelConfig, max_head_dim: int = CUDNN_MAX_HEAD_DIM) -> str | None:
    """Why cuDNN's flash attention cannot take this model's attention, or None if it can."""
    if cfg.dtype != "bfloat16":
        return f"it needs dtype bfloat16, not {cfg.dtype}"
    if cfg.d_head % 8 or cfg.d_head > max_head_dim:
        return f"it needs a head_dim that is a multiple of 8 up to {max_head_dim}, not {cfg.d_head}"
    return None


MESH_AXES: tuple[str, ...] = ("data", "fsdp", "tensor", "expert")


class MeshConfig(StrictModel):
    """Device mesh. -1 on one axis means "all remaining devices" (default: everything on fsdp)."""

    data: int = 1
    fsdp: int = -1
    tensor: int = 1
    expert: int = 1
    devices: int | None = Field(None, ge=1, description="use only the first n local devices (default: all)")

    def shape(self, n_devices: int) -> tuple[int, ...]:
        sizes = [self.data, self.fsdp, self.tensor, self.expert]
        if sum(s == -1 for s in sizes) > 1:
            raise ValueError("at most one mesh axis may be -1")
        if any(s == 0 or s < -1 for s in sizes):
            raise ValueError(f"mesh axis sizes must be positive or -1, got {sizes}")
        known = 1
        for s in sizes:
            if s != -1:
                known *= s
        if -1 in sizes:
            if n_devices % known:
                raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} does not divide {n_devices} devices")
            sizes[sizes.index(-1)] = n_devices // known
        elif known != n_devices:
            raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {known} devices, {n_devices} present")
        return tuple(sizes)
