"""Read a split sweep (or a CSV of its pipelines) into what the split report analyses.

The pipelines come from laws.split (the law's own loader: realized total FLOPs, realized RL share,
planned budget). Test-time compute is measured here, on every evaluated model of the sweep: each
finished pretraining run (the bases) and each RL run's final policy (f > 0; an f = 0 pipeline's model
is its base). Each model draws K samples per held-out problem once, with the RL recipe's task, prompt
length and sampling; pass@k and maj@k for k = 1, 2, 4, ..., K come from subsets of them
(rl.evaluate.accuracy_vs_samples). The evaluations are cached, one JSON line each, in
OUT/testtime_eval.jsonl keyed by run id, checkpoint step and settings, and appended as each finishes:
an interrupted report keeps its work, a second one evaluates nothing. The sweep's runs are only read.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from scaling.errors import UserError

CACHE_FILE = "testtime_eval.jsonl"


@dataclass(frozen=True)
class TestTimeSettings:
    """Everything that decides a model's test-time numbers."""

    __test__ = False  # not a pytest class

    task: str
    task_params: dict
    prompt_tokens: int
    max_new: int
    temperature: float
    top_k: int
    top_p: float
    k: int  # samples per problem (the largest k)
    problems: int  # the task's first held-out problems, as in the RL evaluation
    batch_size: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def sampling(self):
        from scaling.config.rl import SamplingConfig

        return SamplingConfig(max_new=self.max_new, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)


@dataclass
class SplitData:
    source: str
    points: Any  # laws.Points of the pipelines (C: realized total, x: realized share, y: accuracy, budget: C planned)
    metric: str  # what the pipelines' accuracy is
    metric_axis: str  # the same in few words
    point_runs: list[str] = field(default_factory=list)  # run id per point (sweep sources)
    pipelines: list[dict] = field(default_factory=list)  # registry rows of the pipelines (sweep sources only)
    models: list[dict] = field(default_factory=list)  # test-time records, one per evaluated model
    settings: TestTimeSettings | None = None
    not_measured: str | None = None  # why there is no test-time data
    evaluated: int = 0  # models evaluated now (the rest came from the cache)
    warnings: list[str] = field(default_factory=list)


def collect_split(source: str | Path, out_dir: Path, k: int, problems: int, reevaluate: bool = False,
                  log: Callable[[str], Any] = lambda _: None) -> SplitData:
    from scaling.laws.split import load_split_points, sweep_table

    pts = load_split_points(source)
    if not Path(source).is_dir():
        return SplitData(str(source), pts, f"column {pts.labels['y']!r} of {Path(source).name}", pts.labels["y"],
                         not_measured=f"the source {source} is a CSV: test-time compute is measured on a split "
                                      "sweep directory's checkpoints")
    sweep = Path(source).resolve()
    rows = _registry_rows(sweep)
    by_id = {r["run_id"]: r for r in rows}
    runs = [label.removeprefix("run ") for label in sweep_table(sweep)[0].row_labels]  # the points' order
    pipelines = [by_id[r] for r in runs]
    recipe = _rl_config(sweep, pipelines[0])
    metric = (f"greedy pass@1 on {recipe.eval.problems} held-out {recipe.task.name} problems "
              "(the RL recipe's evaluation)")
    data = SplitData(str(source), pts, metric, f"greedy pass@1, {recipe.eval.problems} problems", runs, pipelines)
    if k == 0:
        data.not_measured = "--test-time-k 0: not measured"
        return data
    settings = _settings(recipe, k, problems)
    if settings.temperature == 0:
        data.not_measured = ("the RL recipe samples greedily (sampling.temperature 0): k samples of a problem would "
                             "be one answer repeated")
        return data
    data.settings = settings
    data.models, data.evaluated = _test_time(sweep, rows, settings, out_dir, reevaluate, log, data.warnings)
    return data


def _registry_rows(sweep: Path) -> list[dict]:
    from scaling.sweep.registry import Registry

    return Registry(sweep / "registry.sqlite").runs()


def _rl_config(sweep: Path, row: dict):
    """A pipeline's RL config: the sweep's RL recipe (every pipeline shares it but for budget and init)."""
    import yaml

    from scaling.config.base import validate
    from scaling.config.rl import RLConfig

    path = sweep / row["run_dir"] / "config.yaml"
    return validate(RLConfig, yaml.safe_load(path.read_text()) or {}, source=str(path))


def _settings(cfg, k: int, problems: int) -> TestTimeSettings:
    from scaling.config.rl import EVAL_SEED_OFFSET

    s = cfg.sampling
    return TestTimeSettings(cfg.task.name, dict(cfg.task.params), cfg.grpo.max_prompt_tokens, s.max_new,
                            s.temperature, s.top_k, s.top_p, k, problems, min(cfg.eval.batch_size, problems * k),
                            cfg.seed + EVAL_SEED_OFFSET)


def _models(sweep: Path, rows: list[dict]) -> list[dict]:
    """The evaluated models: every finished pretraining run, and every finished RL run with f > 0, with
    its training compute (full convention: pretraining, or its base's pretraining + its RL FLOPs)."""
    by_id = {r["run_id"]: r for r in rows}
    out = []
    for r in rows:
        if r["status"] != "done" or (r.get("split_share") is not None and not r["split_share"] > 0):
            continue
        if r.get("kind") == "rlvr":
            base = by_id.get(r.get("fork_of"))
            if base is None or r.get("init_flops") is None:
                continue
            out.append({"run_id": r["run_id"], "name": r["name"], "role": "RL", "run_dir": r["run_dir"],
                        "init_dir": base["run_dir"], "base_run_id": base["run_id"],
                        "train_flops": float(r["init_flops"] + r["flops_full"]),
                        "split_budget": r["split_budget"], "split_share": r["split_share"]})
        else:
            out.append({"run_id": r["run_id"], "name": r["name"], "role": "pretrained", "run_dir": r["run_dir"],
                        "model": r.get("model"), "train_flops": float(r["flops_full"])})
    return sorted(out, key=lambda m: (m["train_flops"], m["role"], m["run_id"]))


def _test_time(sweep: Path, rows: list[dict], settings: TestTimeSettings, out_dir: Path, reevaluate: bool, log,
               warnings: list[str]) -> tuple[list[dict], int]:
    from scaling.compare.collect import _checkpoint_step, append_cache, cache_key, read_cache

    cache_path = out_dir / CACHE_FILE
    cache = {} if reevaluate else read_cache(cache_path)
    models, evaluated, task = _models(sweep, rows), 0, None
    out = []
    for i, model in enumerate(models):
        step = _checkpoint_step(sweep / model["run_dir"])
        if step is None:
            warnings.append(f"test-time: {model['name']} has no checkpoint; left out")
            continue
        key = cache_key(settings, model["run_id"], step)
        record = cache.get(key)
        if record is None:
            log(f"test-time: sampling {settings.k} per problem from {model['name']} ({i + 1}/{len(models)})")
            started = time.time()
            task = task or _task(settings)
            curve = _test_time_curve(sweep, model, settings, task)
            record = {"key": key, "run_id": model["run_id"], "step": step, "settings": settings.to_json(),
                      "curve": curve, "wall_s": round(time.time() - started, 3)}
            append_cache(cache_path, record)
            evaluated += 1
        out.append({**model, "checkpoint_step": step, **record["curve"]})
    return out, evaluated


def _task(settings: TestTimeSettings):
    """The task, its held-out problems drawn once for every model (drawing costs more than a tiny model)."""
    from scaling.compare.collect import HeldOutOnce
    from scaling.rl.tasks import get_task

    return HeldOutOnce(get_task(settings.task, **settings.task_params))


def _test_time_curve(sweep: Path, model: dict, settings: TestTimeSettings, task) -> dict:
    import jax

    from scaling.model.accounting import count_model
    from scaling.rl.checkpoints import load_policy
    from scaling.rl.evaluate import Evaluator, accuracy_vs_samples
    from scaling.rl.validate import check_task_fits_model

    init = sweep / model["init_dir"] if "init_dir" in model else None
    policy = load_policy(sweep / model["run_dir"], init_dir=init)
    try:
        check_task_fits_model(task, policy.tokenizer, policy.pretrain_cfg, settings.prompt_tokens)
    except UserError as e:
        raise UserError(f"{model['name']}: cannot be evaluated on {settings.task}: {e}") from None
    evaluator = Evaluator(policy.graphdef, policy.tokenizer, task, settings.prompt_tokens, settings.batch_size)
    counts = count_model(policy.model_cfg, settings.prompt_tokens + settings.max_new)
    return accuracy_vs_samples(evaluator, policy.states, counts, task.eval_problems(settings.problems), settings.k,
                               settings.sampling(), jax.random.key(settings.seed))
