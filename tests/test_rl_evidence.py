"""Evidence that GRPO improves a pretrained model on problems it never trained on (issue #6).

Runs the README's two evidence commands exactly as a user would, each in a fresh process with one CPU
device (configs/train/math-3step-cpu.yaml, then configs/rl/arithmetic-3step-cpu.yaml): ~1 min of
pretraining, ~2 min of RL on 2 cores. The programs are deterministic on a given machine, so the numbers
below repeat; the base model is sensitive to float rounding, though (the same recipe on another CPU, under
pytest's 8 simulated devices, or before a change in the order of the optimizer's float operations started
at greedy 0.078-0.20), which is why the bounds leave room.
Measured (2-core AVX-512 box, 2026-12-04), held-out pass@1 at RL steps 0 / 60 / 120:
  greedy (1024 problems)                     0.165 / 0.184 / 0.222
  sampled (mean of 8 samples, DeepSeek-R1)   0.079 / 0.134 / 0.159   (256 problems)
  pass@8                                     0.457 / 0.520 / 0.496
On the previous box (2026-12-03, greedy on 256 problems): greedy 0.191 / 0.219 / 0.281, sampled
0.096 / 0.158 / 0.199.
"""
import json
import math
import os
import shlex
import subprocess
import sys

import numpy as np
import yaml
from test_readme import README, ROOT, readme_commands

RECIPE = ("scaling train configs/train/math-3step-cpu.yaml", "scaling rl configs/rl/arithmetic-3step-cpu.yaml")


def test_grpo_doubles_held_out_pass_at_1_of_a_pretrained_model(tmp_path):
    commands = [c for c in readme_commands() if c.startswith(RECIPE)]
    assert len(commands) == 2, f"{README} should show the two evidence commands {RECIPE}"
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}  # as a user's shell has it
    for command in commands:
        argv = [sys.executable, "-m", "scaling.cli.main", *shlex.split(command)[1:], "--quiet"]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stderr[-2000:])
    rl_dir = tmp_path / "runs/math-3step-rl"
    summary = json.loads((rl_dir / "summary.json").read_text())

    start, end = summary["eval_history"][0], summary["eval_history"][-1]
    # The task is harder than most of the corpus (only a third of it has three steps): the model starts
    # well above zero and far from solved.
    assert 0.10 <= start["accuracy"] <= 0.30, start
    # The policy's own accuracy on held-out problems (what GRPO maximises) rises by more than half, far
    # outside the eval's noise (256 problems x 8 samples). Base models that differ only in float rounding
    # (another jax/XLA build) gained 1.7-2.5x (README): 1.6x is the floor of that spread, not one build's number.
    assert end["pass@1"] >= 1.6 * start["pass@1"] and end["pass@1"] - start["pass@1"] >= 0.06, (start, end)
    # ... and greedy decoding gains too, by at least two standard errors of the difference of two independent
    # scores (conservative: both are on the same problems, so the paired error is smaller): the improvement is
    # not only a sharper sampling distribution. On the 2026-12-04 base the gain was +0.047 on 256 problems
    # (1.9 standard errors) and +0.057 on 1024 (3.3): the recipe scores greedy on 1024 problems for this.
    n = yaml.safe_load((rl_dir / "config.yaml").read_text())["eval"]["problems"]
    se = math.sqrt(sum(p * (1 - p) / n for p in (start["accuracy"], end["accuracy"])))
    assert end["accuracy"] - start["accuracy"] >= 2 * se, (start, end, n)
    # The train reward rises over the run (per-step rewards are noisy: compare 20-step means).
    rewards = [r["reward"] for r in map(json.loads, (rl_dir / "metrics.jsonl").read_text().splitlines())
               if "reward" in r]
    assert len(rewards) == summary["steps"] == 120
    assert np.mean(rewards[-20:]) >= 1.2 * np.mean(rewards[:20]), (rewards[:20], rewards[-20:])
    # The accuracy-vs-RL-compute curve is in the metrics, FLOPs increasing.
    flops = [r["rl_flops"] for r in summary["eval_history"]]
    assert flops[0] == 0 and all(b > a for a, b in zip(flops, flops[1:]))
