"""RL with verifiable rewards: tasks and verifiers, GRPO, policy evaluation, compute accounting, the loop.

The KV-cache sampler it rolls out with lives in `scaling.sampling` (eval and compare use it too)."""
