"""Files a Spark job checks and removes itself, on a Spark Connect session (through pyarrow, no
JVM in the process): the same answers as through Hadoop's filesystem."""

from __future__ import annotations

from spark_jobs.common import _ArrowFiles


def test_files_on_connect_tell_missing_files_and_folders_apart_and_remove_them(tmp_path):
    partition = tmp_path / "features" / "ds=2013-01-02"
    partition.mkdir(parents=True)
    (partition / "part-0.parquet").write_bytes(b"x")
    drop = tmp_path / "landing" / "flights.csv"
    drop.parent.mkdir()
    drop.write_text("a,b\n")

    assert _ArrowFiles(str(partition)).exists() and not _ArrowFiles(str(partition)).is_file()
    assert _ArrowFiles(str(drop)).is_file() and _ArrowFiles(f"file://{drop}").is_file()
    missing = _ArrowFiles(str(tmp_path / "features" / "ds=2013-01-03"))
    assert not missing.exists() and not missing.is_file()
    missing.delete()  # nothing to remove is not an error

    _ArrowFiles(str(partition)).delete()
    _ArrowFiles(str(drop)).delete()
    assert not partition.exists() and not drop.exists()
    assert (tmp_path / "features").is_dir()  # only the partition goes
