"""Sweeps: a sweep file (sweeps/*.yaml) expands to a grid of runs, each trained by `scaling train` and
recorded in SWEEP_DIR/registry.sqlite, which the fits read.

    spec.py      the sweep file's schema          expand.py / pretrain.py / wsd.py / rlvr.py  designs -> runs
    rules.py     safe per-size hyperparameter formulas
    plan.py      a planned run: resolved config, id, name, registry columns
    kinds.py     the table of sweep kinds (pretrain, rlvr) and their designs
    registry.py  the SQLite results registry (a contract)
    executors/   local subprocesses and Ray tasks       scheduler.py, progress.py
    submit.py    submit / resume                        status.py   status table and CSV export
"""
