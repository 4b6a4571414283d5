"""Evidence that GRPO improves a pretrained model on problems it never trained on (issue #6).

The recipe files are the ones a user runs (configs/train/math-3step-cpu.yaml, then
configs/rl/arithmetic-3step-cpu.yaml): ~1.5 min of pretraining and ~2 min of RL on 2 cores.
Measured in this test on the 2-core box (4.3 min): greedy pass@1 0.199 -> 0.246 -> 0.273 at RL steps
0/60/120, sampled pass@1 (the mean of 8 samples per held-out problem, DeepSeek-R1's definition)
0.090 -> 0.189 -> 0.225. Outside pytest the same recipe gives a different base model (0.160 greedy) and, with
RL seeds 0 / 1, sampled 0.079 -> 0.182 / 0.149, hence the 1.5x bound; the issue note says why greedy
accuracy rises slowly at this scale.
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
    assert 0.08 <= start["accuracy"] <= 0.35, start
    # The policy's own accuracy on held-out problems (what GRPO maximises) rises by half at least ...
    assert end["pass@1"] >= 1.5 * start["pass@1"], (start, end)
    # ... and greedy decoding gains too: the improvement is not only a sharper sampling distribution.
    assert end["accuracy"] >= start["accuracy"] + 0.02, (start, end)
    # The train reward rises over the run (per-step rewards are noisy: compare 20-step means).
    rewards = [r["reward"] for r in map(json.loads, (tmp_path / "rl/metrics.jsonl").read_text().splitlines())
               if "reward" in r]
    assert len(rewards) == rl_cfg.budget.steps
    assert np.mean(rewards[-20:]) >= 1.3 * np.mean(rewards[:20]), (rewards[:20], rewards[-20:])
    # The accuracy-vs-RL-compute curve is in the metrics, FLOPs increasing.
    flops = [r["rl_flops"] for r in summary["eval_history"]]
    assert flops[0] == 0 and all(b > a for a, b in zip(flops, flops[1:]))
