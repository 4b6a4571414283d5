"""`scaling sweep submit|status|export`: run a grid of trainings, see where it stands, export results."""
from __future__ import annotations

from pathlib import Path


def register(subparsers):
    p = subparsers.add_parser(
        "sweep", help="submit a sweep of runs, show its status, export its registry",
        description="Sweeps: a sweep file (sweeps/*.yaml) names a base recipe, models, budgets and a design "
        "(grid, isoflop, wsd_forks), or RL runs from pretrained ones (kind: rlvr), or pretraining/RL pipelines at "
        "fixed total compute (kind: split); submit trains every run and records it in SWEEP_DIR/registry.sqlite.")
    sub = p.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND", required=True)

    s = sub.add_parser("submit", help="train every run of a sweep file (resumes a sweep dir)",
                       description="Train every run of SWEEP_FILE into --out SWEEP_DIR. Submitting again resumes: "
                       "done runs are skipped, interrupted ones resumed, failed ones retried with --retry-failed.")
    s.add_argument("sweep_file", metavar="SWEEP_FILE", help="sweep YAML, or a bundled sweep's name (demo-math-cpu)")
    s.add_argument("--out", required=False, metavar="SWEEP_DIR", help="sweep directory (required unless --dry-run)")
    s.add_argument("--executor", default="local", choices=["local", "ray"])
    s.add_argument("--max-parallel", type=int, default=1, metavar="K", help="runs at once (default 1)")
    s.add_argument("--address", default=None, help="ray: address of an existing cluster (default: start a local one)")
    s.add_argument("--gpus-per-run", type=float, default=0.0, help="ray: GPUs each run asks for (default 0)")
    s.add_argument("--process-per-run", action="store_true",
                   help="local: start a fresh process for every run (default: one persistent worker per slot)")
    s.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    s.add_argument("--dry-run", action="store_true", help="print the grid with estimated wall times; write nothing")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="add to the sweep file's set: (every run), e.g. data.paths=[/data/corpus]; recorded in "
                   "SWEEP_DIR/sweep.yaml, so a resubmit passes the same --set")
    s.add_argument("--no-probe", action="store_true", help="with --dry-run: skip the throughput probe")
    s.set_defaults(func=run_submit)

    st = sub.add_parser("status", help="the runs of a sweep dir as a table")
    st.add_argument("sweep_dir", metavar="SWEEP_DIR")
    st.set_defaults(func=run_status)

    e = sub.add_parser("export", help="write the registry as CSV", description="One CSV row per run, with the "
                       "registry's column names (config_json left out); --curves adds the per-evaluation losses.")
    e.add_argument("sweep_dir", metavar="SWEEP_DIR")
    e.add_argument("--csv", required=True, metavar="FILE")
    e.add_argument("--curves", metavar="FILE", default=None, help="also write the eval curves to FILE")
    e.set_defaults(func=run_export)


def run_submit(args) -> int:
    from scaling.bundled import locate
    from scaling.errors import UserError
    from scaling.sweep.submit import submit

    if not args.out and not args.dry_run:
        raise UserError("--out: required (the sweep directory), unless --dry-run")
    return submit(locate(args.sweep_file, "sweep"), args.out, executor=args.executor, max_parallel=args.max_parallel,
                  address=args.address, retry_failed=args.retry_failed, dry_run=args.dry_run,
                  probe=not args.no_probe, gpus_per_run=args.gpus_per_run, overrides=args.set,
                  process_per_run=args.process_per_run)


def run_status(args) -> int:
    from scaling.sweep.status import print_status

    print_status(args.sweep_dir)
    return 0


def run_export(args) -> int:
    from scaling.errors import UserError
    from scaling.outputs import check_output_file
    from scaling.sweep.status import export_csv

    check_output_file(args.csv, "--csv", reads=(args.sweep_dir,))
    if args.curves is not None:
        check_output_file(args.curves, "--curves", reads=(args.sweep_dir, args.csv))
        if Path(args.curves).absolute() == Path(args.csv).absolute():
            raise UserError(f"--curves {args.curves}: is also the --csv file; give two files")
    try:
        n_runs, n_points = export_csv(args.sweep_dir, args.csv, args.curves)
    except OSError as e:
        raise UserError(f"{e.filename}: cannot write ({e.strerror})") from None
    print(f"wrote {n_runs} runs to {args.csv}" + (f", {n_points} eval points to {args.curves}" if args.curves else ""))
    return 0
