"""Evidence that GRPO improves a pretrained model on problems it never trained on (issue #6).

The recipe files are the ones a user runs (configs/train/math-3step-cpu.yaml, then
configs/rl/arithmetic-3step-cpu.yaml): ~1.5 min of pretraining and ~2 min of RL on 2 cores.
The base model is sensitive to the exact numerics of pretraining: three runs of this recipe (before
and after a change in the order of the optimizer's float operations, and one outside pytest) start at
greedy pass@1 0.199, 0.078 and 0.160. The bounds below held for all three, and for two RL seeds.
Measured (2-core box, 4.3 min), greedy pass@1 at RL steps 0/60/120: 0.199/0.246/0.273,
0.078/0.098/0.145 (this test today) and 0.160/-/0.219; sampled pass@1 (the mean of 8 samples per
held-out problem, DeepSeek-R1's definition): 0.090/0.189/0.225, 0.059/0.082/0.098 and 0.079/-/0.182.
See the issue #6 note for why greedy accuracy rises slowly at this scale.
"""
import json
from pathlib import Path

import numpy as np

from scaling.config.base import load_config
from scaling.config.rl import RLConfig
from scaling.config.run import load_run_config
from scaling.rl.loop import run_rl
from scaling.train import run_training

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_grpo_raises_held_out_accuracy_of_a_pretrained_model(tmp_path):
    base = tmp_path / "pretrained"
    run_training(load_run_config(CONFIGS / "train/math-3step-cpu.yaml", ["train.progress=false"]), base)
    rl_cfg = load_config(RLConfig, CONFIGS / "rl/arithmetic-3step-cpu.yaml", ["progress=false"])
    summary = run_rl(rl_cfg, base, tmp_path / "rl", quiet=True)

    start, end = summary["eval_history"][0], summary["eval_history"][-1]
    # The task is harder than most of the corpus (only a third of it has three steps): the model starts
    # well above zero and far from solved.
    assert 0.05 <= start["accuracy"] <= 0.35, start
    # The policy's own accuracy on held-out problems (what GRPO maximises) rises by half at least ...
    assert end["pass@1"] >= 1.5 * start["pass@1"], (start, end)
    # ... and greedy decoding gains too: the improvement is not only a sharper sampling distribution.
    assert end["accuracy"] >= start["accuracy"] + 0.02, (start, end)
    # The train reward rises over the run (per-step rewards are noisy: compare 20-step means).
    rewards = [r["reward"] for r in map(json.loads, (tmp_path / "rl/metrics.jsonl").read_text().splitlines())
               if "reward" in r]
    assert len(rewards) == rl_cfg.budget.steps
    assert np.mean(rewards[-20:]) >= 1.2 * np.mean(rewards[:20]), (rewards[:20], rewards[-20:])
    # The accuracy-vs-RL-compute curve is in the metrics, FLOPs increasing.
    flops = [r["rl_flops"] for r in summary["eval_history"]]
    assert flops[0] == 0 and all(b > a for a, b in zip(flops, flops[1:]))
