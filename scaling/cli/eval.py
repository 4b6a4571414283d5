"""`scaling eval RUN_DIR --task arithmetic`: test-time compute scaling of a pretrained or RL model."""
from __future__ import annotations

import json


def register(subparsers):
    p = subparsers.add_parser(
        "eval", help="pass@k, majority@k and length-capped accuracy of a run's model on a task",
        description="Evaluate the newest checkpoint of RUN_DIR (pretraining or RL) on a task's held-out problems: "
        "greedy pass@1, sampled pass@k and majority@k for k = 1, 2, 4, ... up to --k, and greedy accuracy under "
        "capped generation lengths, so inference-time scaling can be plotted beside pretraining and RL compute.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--task", default="arithmetic")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="task parameter, e.g. --param max_digits=2 (default: the RL run's task parameters)")
    p.add_argument("--problems", type=int, default=128)
    p.add_argument("--k", type=int, default=64, help="samples per problem (largest k)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new", type=int, default=None,
                   help="generation length for pass@k (default: the RL run's sampling.max_new, else the RL config's)")
    p.add_argument("--caps", default="8,16,32,64", help="generation-length caps for greedy accuracy")
    p.add_argument("--prompt-tokens", type=int, default=None,
                   help="prompt length (default: the RL run's grpo.max_prompt_tokens, else the RL config's)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON ('-' for stdout only)")
    p.set_defaults(func=run)


def run(args) -> int:
    import yaml

    from scaling.config.rl import is_rl_config
    from scaling.errors import UserError
    from scaling.outputs import check_output_file
    from scaling.rl.checkpoints import read_run_config
    from scaling.rl.evaluate import evaluate_test_time_compute

    if args.k < 1 or args.problems < 1:
        raise UserError("--k and --problems must be positive")
    if args.json and args.json != "-":
        check_output_file(args.json, "--json", reads=(args.run_dir,))
    try:
        caps = sorted({int(c) for c in args.caps.split(",") if c.strip()})
    except ValueError:
        raise UserError(f"--caps: expected comma-separated integers, got {args.caps!r}") from None
    params = {}
    from pathlib import Path

    raw = read_run_config(Path(args.run_dir))
    if is_rl_config(raw) and raw["task"].get("name") == args.task:
        params.update(raw["task"].get("params") or {})
    for item in args.param:
        if "=" not in item:
            raise UserError(f"--param {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        params[key] = yaml.safe_load(value)
    result = evaluate_test_time_compute(args.run_dir, args.task, params, problems=args.problems, k=args.k,
                                        temperature=args.temperature, max_new=args.max_new, caps=caps,
                                        prompt_tokens=args.prompt_tokens)
    if args.json == "-":
        print(json.dumps(result))
        return 0
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result, indent=1))
        except OSError as e:
            raise UserError(f"--json {args.json}: cannot write ({e.strerror})") from None
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.run_dir}: {args.task} ({args.problems} held-out problems)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.3f}")
    Console(width=100).print(table)
    return 0
