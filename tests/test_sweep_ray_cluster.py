"""A sweep on a multi-node Ray cluster (Ray's cluster utilities: a head that takes no tasks and two 1-CPU
worker nodes, each its own raylet on this machine): only the driver writes the registry, and a node lost
mid-run costs the run nothing but the steps since its last checkpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scaling.sweep.registry import Registry
from test_sweep_runs import TINY, write_sweep
from tiny_sweeps import wait_for

ray = pytest.importorskip("ray", reason="the Ray executor is the optional 'ray' extra; the dev extra, and so CI, "
                                        "installs it")
from ray.cluster_utils import Cluster  # noqa: E402

# Loaded by every Python process a worker node starts (Ray workers, and the trainers they launch): it logs
# that it is armed, and refuses any open of a sweep registry, logging who tried. A worker that wrote rows
# would fail its run and leave its name in the log.
GUARD = '''import os, sys
_LOG = os.environ["REGISTRY_GUARD_LOG"]
with open(_LOG, "a") as f:
    f.write(f"armed {os.getpid()}\\n")

def _refuse_the_registry(event, args):
    if event == "sqlite3.connect" and str(args[0]).endswith("registry.sqlite"):
        with open(_LOG, "a") as f:
            f.write(f"opened {os.getpid()} {args[0]}\\n")
        raise PermissionError("the sweep registry is the driver's alone")

sys.addaudithook(_refuse_the_registry)
'''


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    # A private Ray temp dir (short: socket paths are limited to 107 bytes): the cluster's address file
    # must not send a concurrent `ray.init()` elsewhere on this machine to this cluster.
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    guard_log = tmp_path / "guard.log"
    worker_env = {"PYTHONPATH": os.pathsep.join([str(guard_dir), os.environ.get("PYTHONPATH", ""),
                                                 str(Path(__file__).parent.parent)]),
                  "REGISTRY_GUARD_LOG": str(guard_log)}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1, env_vars=worker_env) for _ in range(2)]
    try:
        yield cluster, workers, guard_log
    finally:
        cluster.shutdown()


ONE_DEVICE = {"XLA_FLAGS": "--xla_force_host_platform_device_count=1"}  # one CPU device compiles fastest


def submit(sweep: Path, out: Path, address: str) -> subprocess.Popen:
    """`scaling sweep submit` as its own process, the driver, on the cluster at `address`."""
    return subprocess.Popen([sys.executable, "-m", "scaling", "sweep", "submit", str(sweep), "--out", str(out),
                             "--executor", "ray", "--address", address, "--max-parallel", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **ONE_DEVICE})


def test_lost_node_run_resumes_on_resubmit_and_only_the_driver_writes_the_registry(cluster, tmp_path):
    cluster, workers, guard_log = cluster
    # Two runs at once, one per node; the 320-step one is still training after its first checkpoint.
    sweep = write_sweep(tmp_path / "cluster.yaml", [256, 40960], models=TINY[:1],
                        set={"train.checkpoint_every": 40, "train.log_every": 20})
    out = tmp_path / "out"
    driver = submit(sweep, out, cluster.address)
    registry = Registry(out / "registry.sqlite")

    def checkpointed_long_run():
        if driver.poll() is not None:
            raise AssertionError(f"the sweep ended before its long run was checkpointed:\n{driver.stdout.read()}")
        try:
            row = next(r for r in registry.runs() if r["tokens"] == 40960 and r["status"] == "running")
        except Exception:  # the registry is not created yet, or the run not submitted
            return None
        if not any(p.name.isdigit() for p in (out / row["run_dir"] / "checkpoints").glob("*")):
            return None
        # The task's log header names the node it trains on.
        return row, (out / "logs" / f"{row['name']}.log").read_text().split("(ray node ")[1].split(")")[0]

    try:
        victim, node_id = wait_for(checkpointed_long_run, 300, "the long run to checkpoint on a worker node")
        assert victim["pid"] == driver.pid  # the row names its watcher, the driver, not a process on the node
        metrics = out / victim["run_dir"] / "metrics.jsonl"
        head = [line for line in metrics.read_text().splitlines() if json.loads(line)["step"] <= 40]
        cluster.remove_node(next(node for node in workers if node.node_id == node_id))
        output, _ = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    # Nothing failed, but the sweep is not finished: exit 1, saying the lost run resumes on the next submit.
    assert driver.returncode == 1 and "1 of 2 runs were interrupted" in output and "submit again" in output, output
    lost = registry.run(victim["run_id"])
    assert lost["status"] == "pending" and "interrupted" in lost["error"] and lost["attempts"] == 1, lost
    short = next(r for r in registry.runs() if r["run_id"] != victim["run_id"])
    assert short["status"] == "done" and short["attempts"] == 1

    # The reference: the same run, uninterrupted, trained directly while the sweep is resubmitted.
    reference = subprocess.Popen([sys.executable, "-m", "scaling", "train", f"configs/{victim['name']}.yaml",
                                  "--out", str(tmp_path / "reference")], cwd=out, env={**os.environ, **ONE_DEVICE},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    resubmit = submit(sweep, out, cluster.address)  # on the one node left
    output, _ = resubmit.communicate(timeout=300)
    assert resubmit.returncode == 0, output
    assert reference.wait(300) == 0
    resumed = registry.run(victim["run_id"])
    assert resumed["status"] == "done" and resumed["attempts"] == 2, resumed
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert logged == sorted(set(logged)) and metrics.read_text().splitlines()[:len(head)] == head  # from its checkpoint
    expected = json.loads((tmp_path / "reference" / "summary.json").read_text())
    assert resumed["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert resumed["eval_loss"] == pytest.approx(expected["eval_loss"], rel=1e-5)

    guard = guard_log.read_text().splitlines()
    assert any(line.startswith("armed") for line in guard), "the guard never ran on a worker node"
    assert not [line for line in guard if line.startswith("opened")], guard
