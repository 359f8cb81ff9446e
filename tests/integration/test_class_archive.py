"""The environment's class-data archive (``make venv`` makes it) is what a Spark driver the platform
starts maps its classes from: a ``spark-submit`` with the platform's driver options loads Spark's
own classes from the archive, not from the jars."""

from __future__ import annotations

import os
import subprocess
import sys

from mlcycle.class_archive import ARCHIVE
from mlcycle.config import REPO_ROOT, spark_conf


def test_a_driver_the_platform_starts_loads_sparks_classes_from_the_archive(tmp_path):
    assert ARCHIVE.is_file(), f"no class-data archive at {ARCHIVE}: `make venv` makes it"
    options = spark_conf()["spark.driver.extraJavaOptions"]
    loaded = tmp_path / "classes.log"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("JAVA_TOOL_OPTIONS", None)
    done = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "spark-submit"),
            "--master", "local[1]",
            "--conf", f"spark.driver.extraJavaOptions={options} -Xlog:class+load=info:file={loaded}",
            "--conf", "spark.ui.enabled=false",
            str(REPO_ROOT / "bench" / "class_archive.py"), "--probe",
        ],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    archived = from_jars = 0  # Spark's classes (not the classes the JVM generates at run time)
    for line in loaded.read_text().splitlines():
        name, _, source = line.partition(" source: ")
        if " org.apache.spark." not in name:
            continue
        if source == "shared objects file (top)":
            archived += 1
        elif source.endswith(".jar"):
            from_jars += 1
    # the few from the jars are those the archive's job had no use for (a range, the Python runner)
    assert archived > 1000 and from_jars < 0.05 * archived, (archived, from_jars)


def test_the_benchmark_times_a_fresh_spark_process_with_and_without_the_archive(smoke_run):
    """``bench/class_archive.py`` at its smallest size (its smoke run, as ``test_bench_smoke.py``
    runs the others): one round of its lightest job, the Connect server's start (a JVM, no Python)."""
    import re

    env = {**os.environ}
    env.pop("JAVA_TOOL_OPTIONS", None)
    with smoke_run():
        done = subprocess.run(
            [sys.executable, "bench/class_archive.py", "--job", "server", "--rounds", "1"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    medians = dict(re.findall(r"^  (without|with) the archive\s+([\d.]+) s$", done.stdout, re.M))
    ratio = re.search(r"^without / with: ([\d.]+)x$", done.stdout, re.M)
    assert set(medians) == {"without", "with"} and ratio, done.stdout
    without, with_ = float(medians["without"]), float(medians["with"])
    assert with_ > 0 and abs(float(ratio[1]) - without / with_) < 0.01 * float(ratio[1]) + 0.01
