"""`scaling demo`: pretraining sweeps, RLVR sweep, laws and the comparison on the built-in corpora.

Thin: parses arguments and calls scaling.demo.
"""
from __future__ import annotations

from pathlib import Path

DESCRIPTION = """\
Run the lab's main job on the built-in corpora, on CPU:
  1. an isoFLOP pretraining sweep on stdlib-code (sweeps/demo-cpu-isoflop.yaml)
  2. a pretraining sweep on synthetic-math (sweeps/demo-math-cpu.yaml)
  3. an RLVR (GRPO) sweep from its most-trained models (sweeps/rlvr-cpu.yaml)
  4. the loss laws of sweep 1 (`scaling plot`), and 5. `scaling compare` of sweeps 2 and 3.
--seed S reruns all of it with other seeds, into runs/demo-seedS; each demo also writes OUT/headline.json.
--noise-floor DIR DIR... reads two or more demos of different seeds and reports how much each headline
number moves from seed to seed (OUT/noise_floor.md, default runs/demo-noise-floor).
Ends with the paths of the reports and figures and a five-line summary of the fitted laws.
Everything resumes: a second `scaling demo` reuses finished runs and evaluations and only refits.
"""


def register(subparsers) -> None:
    import argparse

    p = subparsers.add_parser("demo", help="the whole pipeline on CPU: sweeps, laws, comparison",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where everything goes (default runs/demo for seed 0, runs/demo-seedS for --seed S)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="every seed of the pipeline: the sweeps' seeds (model init, data order, RL problems, rollouts, "
                        "eval sampling; replaces a --*-sweep file's seeds) and the bootstrap seed (default 0)")
    p.add_argument("--metric", choices=("pass@1", "greedy"), default="pass@1",
                   help="accuracy of the comparison: sampled pass@1 (mean over the RL evaluation's samples, default) "
                        "or greedy pass@1")
    p.add_argument("--noise-floor", nargs="+", default=None, metavar="DEMO_DIR",
                   help="run nothing: the seed-to-seed spread of the headline numbers of these demos' folders")
    p.add_argument("--max-parallel", type=int, default=2, metavar="K", help="runs at once (default 2)")
    p.add_argument("--bootstrap", type=int, default=200, metavar="K", help="bootstrap replicates (default 200)")
    for name, what in (("isoflop", "the isoFLOP pretraining sweep"), ("math", "the synthetic-math pretraining sweep"),
                       ("rlvr", "the RLVR sweep (its init.sweep is replaced)")):
        p.add_argument(f"--{name}-sweep", metavar="FILE", default=None, help=f"{what} (default: the bundled one)")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.demo import DemoSweeps, default_out, run_demo
    from scaling.errors import UserError
    from scaling.laws.bootstrap import check_replicates

    from scaling.outputs import check_writable_dir

    if args.noise_floor is not None:
        from scaling.headline import write_noise_floor
        from scaling.outputs import check_output_dir

        out = check_output_dir(args.out or "runs/demo-noise-floor", "--out")  # never into a run's or sweep's files
        path, text = write_noise_floor([Path(d) for d in args.noise_floor], out)
        print(text + f"\nwritten: {path} (and noise_floor.json)")
        return 0
    if args.seed < 0:
        raise UserError(f"--seed {args.seed}: must be >= 0")
    out = Path(args.out) if args.out is not None else default_out(args.seed)
    check_writable_dir(str(out), "--out")
    if args.max_parallel < 1:
        raise UserError(f"--max-parallel {args.max_parallel}: must be >= 1")
    check_replicates(args.bootstrap)
    bundled = DemoSweeps.bundled()
    sweeps = DemoSweeps(*(Path(getattr(args, f"{n}_sweep") or getattr(bundled, n)) for n in ("isoflop", "math", "rlvr")))
    run_demo(out, sweeps, max_parallel=args.max_parallel, bootstrap=args.bootstrap, seed=args.seed, metric=args.metric)
    return 0
