"""Batched KV-cache generation from a decoder: RL rollouts, `scaling eval` and `scaling compare` all sample here.

It sits beside `train` and `rl` (it imports the model, nothing imports it from below); the sampling
settings are `config.rl.SamplingConfig`, the same object an RL config carries.
"""
from scaling.sampling.sampler import decode_completions, generate, left_pad

__all__ = ["decode_completions", "generate", "left_pad"]
