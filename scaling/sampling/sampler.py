"""Batched generation with a KV cache: one prefill, then a compiled decode loop.

Prompts are left-padded to a fixed length P so every row's last prompt token sits in slot P-1 and
all rows decode in lockstep; per-row positions skip the padding and `kv_valid` masks it out of
attention. The decode loop is a `lax.while_loop` that stops when every row has produced EOS (or after
`max_new` tokens). The same function serves RL rollouts (sampling) and evaluation (greedy).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.config.rl import SamplingConfig


def left_pad(token_lists: list[list[int]], length: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """[B, length] int32 tokens right-aligned, and the [B, length] validity mask."""
    out = np.full((len(token_lists), length), pad_id, np.int32)
    valid = np.zeros((len(token_lists), length), bool)
    for i, toks in enumerate(token_lists):
        if len(toks) > length:
            raise ValueError(f"prompt of {len(toks)} tokens exceeds the prompt length {length}")
        out[i, length - len(toks):] = toks
        valid[i, length - len(toks):] = True
    return out, valid


def _filter_logits(logits_BxV, sampling: SamplingConfig):
    logits_BxV = logits_BxV / sampling.temperature
    if sampling.top_k:
        kth = jax.lax.top_k(logits_BxV, sampling.top_k)[0][:, -1:]
        logits_BxV = jnp.where(logits_BxV < kth, -jnp.inf, logits_BxV)
    if sampling.top_p < 1.0:
        sorted_desc = jnp.sort(logits_BxV, axis=-1)[:, ::-1]
        cum = jnp.cumsum(jax.nn.softmax(sorted_desc, axis=-1), axis=-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least the top token).
        cutoff_idx = jnp.sum(cum < sampling.top_p, axis=-1, keepdims=True)
        cutoff = jnp.take_along_axis(sorted_desc, cutoff_idx, axis=-1)
        logits_BxV = jnp.where(logits_BxV < cutoff, -jnp.inf, logits_BxV)
    return logits_BxV


def _next_token(logits_BxV, key, sampling: SamplingConfig):
    if sampling.temperature == 0.0:
        return jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, _filter_logits(logits_BxV, sampling), axis=-1).astype(jnp.int32)


@partial(jax.jit, static_argnames=("graphdef", "sampling", "eos_id", "pad_id"))
def generate(graphdef, states, prompts_BxP, valid_BxP, key, *, sampling: SamplingConfig, eos_id: int, pad_id: int):
    """`states` is the tuple of nnx states that `nnx.merge(graphdef, *states)` takes.

    Returns (completions_BxN int32, padded with pad_id after EOS; lengths_B = tokens up to and
    including EOS (N if none); steps = decode iterations actually run)."""
    model = nnx.merge(graphdef, *states)
    B, P = prompts_BxP.shape
    N = sampling.max_new
    T = P + N
    cache = model.init_cache(B, T)
    kv_valid = jnp.zeros((B, T), bool).at[:, :P].set(valid_BxP)
    n_prompt_B = valid_BxP.sum(-1).astype(jnp.int32)
    positions_BxP = jnp.maximum(jnp.cumsum(valid_BxP, axis=-1) - 1, 0).astype(jnp.int32)
    logits, _, cache = model(prompts_BxP, positions_BxP, cache, kv_valid)
    key, sub = jax.random.split(key)
    first = _next_token(logits[:, -1], sub, sampling)

    out = jnp.full((B, N), pad_id, jnp.int32)

    def cond(carry):
        i, _, _, _, done, _, _ = carry
        return (i < N) & ~jnp.all(done)

    def body(carry):
        i, token, cache, kv_valid, done, out, key = carry
        token = jnp.where(done, pad_id, token)
        out = out.at[:, i].set(token)
        done = done | (token == eos_id)
        kv_valid = kv_valid.at[:, P + i].set(True)
        logits, _, cache = model(token[:, None], (n_prompt_B + i)[:, None], cache, kv_valid)
        key, sub = jax.random.split(key)
        nxt = _next_token(logits[:, -1], sub, sampling)
        return i + 1, nxt, cache, kv_valid, done, out, key

    init = (jnp.int32(0), first, cache, kv_valid, jnp.zeros((B,), bool), out, key)
    steps, _, _, _, _, out, _ = jax.lax.while_loop(cond, body, init)
    is_eos = out == eos_id
    lengths = jnp.where(is_eos.any(-1), jnp.argmax(is_eos, axis=-1) + 1, N).astype(jnp.int32)
    return out, lengths, steps


def decode_completions(tokenizer, completions_BxN: np.ndarray, lengths_B: np.ndarray) -> list[str]:
    """Text before EOS (EOS itself excluded, as the verifiers expect)."""
    texts = []
    for row, n in zip(np.asarray(completions_BxN), np.asarray(lengths_B)):
        toks = row[:n].tolist()
        if toks and toks[-1] == tokenizer.eos_id:
            toks = toks[:-1]
        texts.append(tokenizer.decode(toks))
    return texts
