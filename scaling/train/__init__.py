"""Pretraining: budgets, optimizer and schedules, the compiled step, checkpoints, metrics, the loop."""
from scaling.train.loop import run_training

__all__ = ["run_training"]
