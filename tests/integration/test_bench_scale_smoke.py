"""The scale benchmark (``bench/scale.py``) at its smallest size, as ``test_bench_smoke.py`` runs
the others: a module of its own, so that it runs beside them. It runs in-process: the scaled data and
the Spark jobs on the test session (``--in-process``: a JVM per job would cost more than the jobs),
pandas and Polars each in a process of its own, as in the benchmark, where its time and memory are
measured."""

from __future__ import annotations

import json
import sys

from test_bench_smoke import _parquet_rows

from mlcycle.config import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))

import scale  # noqa: E402


def test_scale_builds_trains_and_scores_a_scaled_year_and_the_engines_agree(
    spark, tmp_path, capsys, smoke_run
):
    """A "year" of two days, landed and gated by the range gate, made twice its traffic; features
    in Spark, pandas and Polars (compared row for row), training on the first day (the model's
    smallest forest: the same pipeline), scoring the second."""
    from spark_jobs import quality
    from spark_jobs.flights.replay import land_days, load_reference

    source, work = tmp_path / "source", tmp_path / "work"
    days = ["2013-01-01", "2013-01-02"]
    load_reference(str(source))
    land_days(str(source), days)
    assert quality.main(["--start", days[0], "--end", days[-1], "--data-root", str(source)]) == 0
    with smoke_run():
        scale.main([
            "--source", str(source), "--work", str(work), "--sizes", "2",
            "--engines", "spark-local", "pandas", "polars", "--year", days[0], days[-1],
            "--train", days[0], days[0], "--score", days[1], days[1], "--in-process", "--forest", "smallest",
        ])  # fmt: skip
    printed = capsys.readouterr().out
    assert spark.range(3).count() == 3  # the test session is still up
    records = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
    done = {(r["engine"], r["job"]): r for r in records}
    assert set(done) == {
        ("spark-local", "features"), ("spark-local", "training"), ("spark-local", "scoring"),
        ("pandas", "features"), ("polars", "features"),
    }  # fmt: skip
    assert all(r["status"] == "ok" and r["seconds"] > 0 and r["driver_mb"] > 0 for r in records), records
    sizes = json.loads((work / "x2" / "sizes.json").read_text())
    real = sum(1 for d in sorted((source / "validated" / "flights").glob("ds=*")) for _ in _parquet_rows(d))
    assert sizes["flights"][0] == 2 * real and sizes["flights"][1] > 0
    # every flight of the two days has its features, in every engine; the second day is scored
    assert {done[(e, "features")]["rows"] for e in ("spark-local", "pandas", "polars")} == {2 * real}
    scored = sum(1 for _ in _parquet_rows(work / "x2" / "features" / f"ds={days[1]}"))
    assert done[("spark-local", "scoring")]["rows"] == scored
    assert "pandas x2: the same table as Spark's on 2 days" in printed
    assert "polars x2: the same table as Spark's on 2 days" in printed
    assert "training and scoring with the smallest forest" in printed
    assert {done[(e, j)]["forest"] for e, j in done} == {"smallest"}
    # the forest trained is the smallest one: 5 trees of depth 4
    from pyspark.ml import PipelineModel

    forest = PipelineModel.load(str(work / "x2" / "out" / "spark-local" / "model")).stages[-1]
    assert (forest.getNumTrees, forest.getOrDefault("maxDepth")) == (5, 4)
