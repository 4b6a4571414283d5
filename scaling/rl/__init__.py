"""RL with verifiable rewards: tasks and verifiers, the KV-cache sampler, GRPO, compute accounting, the loop."""
