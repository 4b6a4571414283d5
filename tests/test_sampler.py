"""The KV-cache sampler: greedy decoding equals argmax of the full-sequence forward pass."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling.config.model import ModelConfig, MoEConfig
from scaling.model import build_model
from scaling.rl.sampler import SamplingParams, generate, left_pad

CFG = ModelConfig(D=32, L=2, H=4, KV=2, F=64, V=64, max_seq_len=64, dtype="float32")
EOS, PAD = 62, 63


def greedy_by_full_forward(model, prompt: list[int], n: int) -> list[int]:
    """Reference: re-run the whole sequence every step, no cache; pad after EOS like the sampler."""
    seq = list(prompt)
    for _ in range(n):
        logits, _, _ = model(jnp.asarray([seq], jnp.int32))
        seq.append(int(jnp.argmax(logits[0, -1])))
        if seq[-1] == EOS:
            break
    out = seq[len(prompt):]
    return out + [PAD] * (n - len(out))


def test_greedy_decoding_equals_argmax_of_the_full_forward_pass_with_left_padding():
    for cfg in (CFG, CFG.model_copy(update={"moe": MoEConfig(n_experts=4, top_k=2, d_expert=32)})):
        model = build_model(cfg, seed=1)
        graphdef, state = nnx.split(model)
        prompts = [[5, 9, 11], [7, 1, 2, 3, 4, 8], [20], [33, 34]]
        toks, valid = left_pad(prompts, 8, PAD)
        out, lengths, steps = generate(graphdef, (state,), jnp.asarray(toks), jnp.asarray(valid), jax.random.key(0),
                                       params=SamplingParams(max_new=6, temperature=0.0), eos_id=EOS, pad_id=PAD)
        references = [greedy_by_full_forward(model, prompt, 6) for prompt in prompts]
        assert np.asarray(out).tolist() == references
        for ref, n in zip(references, np.asarray(lengths)):
            assert n == (ref.index(EOS) + 1 if EOS in ref else 6)


def test_rows_stop_at_eos_and_sampling_respects_top_k():
    model = build_model(CFG, seed=2)
    graphdef, state = nnx.split(model)
    toks, valid = left_pad([[1, 2], [3]], 4, PAD)
    params = SamplingParams(max_new=10, temperature=1.0, top_k=1)
    out, lengths, steps = generate(graphdef, (state,), jnp.asarray(toks), jnp.asarray(valid), jax.random.key(3),
                                   params=params, eos_id=EOS, pad_id=PAD)
    greedy, _, _ = generate(graphdef, (state,), jnp.asarray(toks), jnp.asarray(valid), jax.random.key(4),
                            params=SamplingParams(max_new=10, temperature=0.0), eos_id=EOS, pad_id=PAD)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(greedy))  # top-1 sampling is greedy
    out = np.asarray(out)
    for row, n in enumerate(np.asarray(lengths)):
        if n < 10:
            assert out[row, n - 1] == EOS and (out[row, n:] == PAD).all()
    assert int(steps) <= 10
