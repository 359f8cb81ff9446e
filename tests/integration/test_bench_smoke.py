"""The benchmarks of ``bench/`` (``make bench``, docs/PERFORMANCE.md) run here at their smallest
size, so that none of them can rot: each runs end to end through the ``main`` that ``make bench``
runs and prints its figures, and what a figure rests on is checked (a twin of the same shape, the
rows scored). The Spark benchmarks run in-process, on the test session (a JVM of their own would
double what they cost here); parse_cost's parses are processes of their own, as in the benchmark."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from mlcycle.config import REPO_ROOT
from tests.short_jvm import OPTIONS

sys.path.insert(0, str(REPO_ROOT / "bench"))

import feature_views  # noqa: E402
import parse_cost  # noqa: E402
import scoring_throughput  # noqa: E402


def _bench(*args: str, timeout: float = 300) -> str:
    env = dict(os.environ, JAVA_TOOL_OPTIONS=OPTIONS)
    out = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_parse_cost_measures_each_dag_file_against_a_twin_of_the_same_shape(tmp_path, smoke_run):
    env = dict(os.environ, MLCYCLE_HOME=str(tmp_path), AIRFLOW_HOME=str(tmp_path / "airflow"))
    # a sign-off, params; assets, a mapped task; no DAG at all
    names = ("model_training.py", "model_scoring.py", "refused_folders.py")
    *shapes, none = parse_cost.shapes_of_files([REPO_ROOT / "dags" / name for name in names], env)
    assert all(s and all(len(d["tasks"]) >= 3 for d in s) for s in shapes)  # not trivial shapes
    assert parse_cost.write_twin(none, tmp_path / "twin_refused_folders.py") is None
    twins = [
        parse_cost.write_twin(s, tmp_path / f"twin_{name}") for s, name in zip(shapes, names, strict=False)
    ]
    assert parse_cost.shapes_of_files(twins, env) == shapes  # DAGs, schedules, params, tasks, edges

    # --fork: each file of a round parsed in a process forked from one interpreter, in order
    forked = parse_cost.forked_parse_seconds([REPO_ROOT / "dags" / names[0], twins[0]], env)
    assert len(forked) == 2 and all(seconds > 0 for seconds in forked)

    with smoke_run():
        printed = _bench("bench/parse_cost.py", "--repeat", "1", "--files", "dags/model_archival.py")
    (row,) = [line.split() for line in printed.splitlines() if line.startswith("model_archival.py")]
    real_s, twin_s, ratio = float(row[1]), float(row[2]), float(row[3])
    assert real_s > 0 and twin_s > 0 and abs(ratio - real_s / twin_s) < 0.02 * ratio


def test_scoring_throughput_scores_and_passes_through_the_same_rows(real_day, tmp_path, capsys, smoke_run):
    features = real_day.root / "features" / f"ds={real_day.ds}"
    # two days of features: the real day to fit on, the same rows as the next day to score
    shutil.copytree(features, tmp_path / "features" / f"ds={real_day.ds}")
    shutil.copytree(features, tmp_path / "features" / "ds=2013-01-03")
    rows = sum(1 for _ in _parquet_rows(features))

    with smoke_run():
        scoring_throughput.main([
            "--data-root", str(tmp_path), "--train-days", "1", "--days", "1", "--copies", "1", "2", "--repeat", "1",
        ])  # fmt: skip
    printed = capsys.readouterr().out
    table = {
        int(m[1]): (int(m[2]), float(m[3]), float(m[4]))
        for m in re.finditer(r"^\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+\d+$", printed, re.M)
    }
    assert set(table) == {1, 2}, printed
    assert table[1][0] == rows and table[2][0] == 2 * rows
    assert all(score > 0 and passed > 0 for _, score, passed in table.values())


def _parquet_rows(folder: Path):
    import pyarrow.parquet as pq

    for part in sorted(folder.glob("*.parquet")):
        yield from range(pq.read_metadata(part).num_rows)


def test_feature_views_times_the_features_job_with_each_way_of_writing_its_views(
    real_day, tmp_path, capsys, smoke_run
):
    root = tmp_path / "root"
    shutil.copytree(real_day.root, root)  # the real day, landed and gated: the day measured
    with smoke_run():
        assert (
            feature_views.main(["--data-root", str(root), "--days", "2", "--rounds", "1", "--warm-ups", "0"])
            == 0
        )
    printed = capsys.readouterr().out
    figures = {
        m[1]: (float(m[2]), float(m[3]), float(m[4]))
        for m in re.finditer(r"^\s+views (.+?)\s+([\d.]+) s\s+\(\+(-?[\d.]+) s, ([\d.]+)x\)$", printed, re.M)
    }
    assert set(figures) == {"one write", "one write per view", "none"}, printed
    none = figures["none"][0]
    for seconds, extra, ratio in figures.values():
        assert (
            seconds > 0
            and abs(extra - (seconds - none)) < 0.02
            and abs(ratio - seconds / none) < 0.02 * ratio
        )
    # the runs of the same day's job reuse the classes Spark generated for it (a day's job generates
    # about 120: with Spark's own room for 100, each run compiled them all again)
    compiled = re.search(r"^classes compiled per run: median (\d+) \(first run (\d+)\)$", printed, re.M)
    assert compiled and int(compiled[1]) < 20, printed
    # each way wrote what it claims: the views in one table (a view without rows has no partition),
    # and a table per view
    from spark_jobs import features as features_job

    assert features_job.write_views.__name__ == "write_views"  # the job writes its views again
    views = {p.name for p in (root / "feature_views" / f"ds={real_day.ds}").iterdir() if p.is_dir()}
    per_view = {p.name for p in (root / "bench_views_per_view").iterdir()}
    assert len(views) >= 5 and {v.removeprefix("view=") for v in views} <= per_view
