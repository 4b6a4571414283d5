"""The KV-cache sampler: greedy decoding equals argmax of the full-sequence forward pass."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.config.model import ModelConfig, MoEConfig
from scaling.model import build_model
from scaling.config.rl import SamplingConfig
from scaling.sampling import generate, left_pad

CFG = ModelConfig(D=32, L=2, H=4, KV=2, F=64, V=64, max_seq_len=64, dtype="float32")
EOS, PAD = 63, 62


def test_greedy_decoding_equals_argmax_of_the_full_forward_pass_with_left_padding():
    stopped_early = []
    for cfg in (CFG, CFG.model_copy(update={"moe": MoEConfig(n_experts=4, top_k=2, d_expert=32)})):
        model = build_model(cfg, seed=1)
        graphdef, state = nnx.split(model)
        prompts = [[5, 9, 11], [7, 1, 2, 3, 4, 8], [20], [33, 34]]
        toks, valid = left_pad(prompts, 8, PAD)
        out, lengths, steps = generate(graphdef, (state,), jnp.asarray(toks), jnp.asarray(valid), jax.random.key(0),
                                       sampling=SamplingConfig(max_new=6, temperature=0.0), eos_id=EOS, pad_id=PAD)
        out, lengths = np.asarray(out), np.asarray(lengths)
        # Reference: one uncached forward over prompt + completion (no padding on the left; filler on the
        # right cannot influence earlier positions). Its argmax at every completion position must be the
        # sampled token, and the sampler must stop exactly at the first EOS.
        full = np.full((len(prompts), 16), 1, np.int32)
        for r, prompt in enumerate(prompts):
            seq = prompt + out[r, : lengths[r]].tolist()
            full[r, : len(seq)] = seq
        logits = np.asarray(jax.jit(lambda t: model(t)[0])(jnp.asarray(full)))
        for r, prompt in enumerate(prompts):
            predicted = logits[r, len(prompt) - 1: len(prompt) - 1 + lengths[r]].argmax(-1)
            assert predicted.tolist() == out[r, : lengths[r]].tolist()
            assert (out[r, lengths[r]:] == PAD).all()
            assert lengths[r] == 6 or out[r, lengths[r] - 1] == EOS
        stopped_early.append(bool((lengths < 6).any()))
        assert int(steps) == 6
    assert any(stopped_early)  # the seed makes at least one row stop at EOS


def test_rows_stop_at_eos_and_sampling_respects_top_k():
    model = build_model(CFG, seed=2)
    graphdef, state = nnx.split(model)
    toks, valid = left_pad([[1, 2], [3]], 4, PAD)
    prompts = (jnp.asarray(toks), jnp.asarray(valid))
    # With an EOS the model never emits, both rows run the full 10 tokens; then the token row 0 emits
    # third is made the EOS, so row 0 must stop right there, whatever row 1 does.
    free, free_lengths, _ = generate(graphdef, (state,), *prompts, jax.random.key(4),
                                     sampling=SamplingConfig(max_new=10, temperature=0.0), eos_id=-1, pad_id=PAD)
    free = np.asarray(free)
    assert np.asarray(free_lengths).tolist() == [10, 10]
    eos = int(free[0, 2])
    stop = free[0].tolist().index(eos) + 1  # its first occurrence: 3, or earlier if it came before
    greedy, _, _ = generate(graphdef, (state,), *prompts, jax.random.key(4),
                            sampling=SamplingConfig(max_new=10, temperature=0.0), eos_id=eos, pad_id=PAD)
    out, lengths, steps = generate(graphdef, (state,), *prompts, jax.random.key(3),
                                   sampling=SamplingConfig(max_new=10, temperature=1.0, top_k=1), eos_id=eos, pad_id=PAD)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(greedy))  # top-1 sampling is greedy
    out, lengths = np.asarray(out), np.asarray(lengths)
    assert lengths[0] == stop <= 3
    np.testing.assert_array_equal(out[0, :stop], free[0, :stop])
    assert out[0, stop - 1] == eos and (out[0, stop:] == PAD).all()
    for row, n in enumerate(lengths):  # every row: tokens up to its first EOS, then padding
        row_tokens = free[row].tolist()
        assert n == (row_tokens.index(eos) + 1 if eos in row_tokens else 10)
        assert (out[row, n:] == PAD).all()
    assert int(steps) == max(lengths)
