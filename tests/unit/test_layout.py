"""A data root of the one-model layout is moved under models/<model>/ by ``mlcycle migrate-layout``:
every file arrives (the per-carrier table rewritten as slices), nothing is left behind or lost, the
moved records are the ones scoring and monitoring read, a second run does nothing, and a run that
would overwrite something or move another model's records moves nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from mlcycle.devstack.cli import main
from mlcycle.devstack.layout import LayoutError, migrate
from mlcycle.specs import catalog

DAYS = ["2013-01-01", "2013-01-02"]
MODEL = catalog().models["air_time"]


def _old_root(root: Path, model_name: str = "flights_air_time") -> Path:
    """The records one model left at the top of a data root, as the one-model layout wrote them."""
    for i, ds in enumerate(DAYS):
        for dataset, frame in {
            "predictions": pd.DataFrame(
                {
                    "flight_id": ["a", "b"],
                    "carrier": ["AA", "UA"],
                    "prediction": [100.0 + i, 50.0],
                    "model_name": model_name,
                    "model_version": "3",
                    "airflow_run_id": "r",
                }
            ),
            "monitoring": pd.DataFrame(
                {
                    "model_name": [model_name],
                    "model_version": ["3"],
                    "n_predictions": [2],
                    "n_actuals": [2],
                    "mae": [4.0 + i],
                    "rmse": [5.0],
                    "bias": [1.0],
                    "coverage": [1.0],
                }
            ),
            "monitoring_carrier": pd.DataFrame(
                {
                    "model_name": model_name,
                    "model_version": "3",
                    "carrier": ["AA", "UA"],
                    "n_flights": [1, 1],
                    "n_predictions": [1, 1],
                    "n_actuals": [1, 1],
                    "mae": [3.0, 5.0],
                    "rmse": [3.0, 5.0],
                    "bias": [1.0, 1.0],
                    "coverage": [1.0, 1.0],
                }
            ),
            "drift": pd.DataFrame(
                {"model_name": [model_name], "model_version": ["3"], "feature": ["temp"], "psi": [0.1]}
            ),
        }.items():
            part = root / dataset / f"ds={ds}"
            part.mkdir(parents=True)
            frame.to_parquet(part / "part-00000-x.snappy.parquet", index=False)
            (root / dataset / "_SUCCESS").write_text("")
        verdict = root / "gates" / "predictions" / f"ds={ds}.json"
        verdict.parent.mkdir(parents=True, exist_ok=True)
        verdict.write_text(json.dumps({"success": True, "model_version": "3", "gate": "predictions"}))
        docs = root / "data_docs" / "predictions" / f"ds={ds}" / "index.html"
        docs.parent.mkdir(parents=True)
        docs.write_text(f"<html>{ds}</html>")
    (root / "reports").mkdir()
    (root / "reports" / "monitoring_mae.png").write_bytes(b"\x89PNG chart")
    # what stays: the use case's own data and the archive
    (root / "features" / f"ds={DAYS[0]}").mkdir(parents=True)
    (root / "features" / f"ds={DAYS[0]}" / "part-0.parquet").write_bytes(b"features")
    (root / "gates" / "features").mkdir(parents=True)
    (root / "gates" / "features" / f"ds={DAYS[0]}.json").write_text("{}")
    return root


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_an_old_data_root_is_moved_under_the_model_with_nothing_lost(tmp_path, capsys):
    root = _old_root(tmp_path / "data")
    before = _digests(root)
    carriers = {ds: pd.read_parquet(root / "monitoring_carrier" / f"ds={ds}") for ds in DAYS}

    assert main(["migrate-layout", "--model", "air_time", "--data-root", str(root), "--dry-run"]) == 0
    assert _digests(root) == before  # a dry run moves nothing
    assert main(["migrate-layout", "--model", "air_time", "--data-root", str(root)]) == 0
    assert "moved" in capsys.readouterr().out
    after = _digests(root)

    renamed = {
        "predictions/": "models/air_time/predictions/",
        "monitoring/": "models/air_time/monitoring/",
        "drift/": "models/air_time/drift/",
        "gates/predictions/": "models/air_time/gates/predictions/",
        "data_docs/predictions/": "data_docs/predictions/air_time/",
        "reports/monitoring_mae.png": "models/air_time/reports/monitoring.png",
    }
    for old, digest in before.items():
        if old.startswith("monitoring_carrier/") or old.endswith("_SUCCESS"):
            continue
        new = next((old.replace(a, b, 1) for a, b in renamed.items() if old.startswith(a)), old)
        assert after.get(new) == digest, f"{old} did not arrive as {new}"
    for ds in DAYS:  # the per-carrier rows, as slices of the carrier
        slices = pd.read_parquet(root / "models" / "air_time" / "monitoring_slices" / f"ds={ds}")
        assert list(slices["slice"]) == ["carrier", "carrier"]
        assert list(slices["value"]) == list(carriers[ds]["carrier"])
        assert slices.drop(columns=["slice", "value"]).equals(carriers[ds].drop(columns=["carrier"]))
    left = {p.split("/")[0] for p in after if not p.startswith(("models/", "data_docs/"))}
    assert left == {"features", "gates"} and not (root / "gates" / "predictions").exists()

    # what the lifecycle reads after the move: the version recorded for a day, the monitored days
    from mlcycle.config import model_root
    from mlcycle.monitoring.live import version_history
    from mlcycle.scoring import recorded_version

    records = model_root(str(root), "air_time")
    assert recorded_version(records, DAYS[0]) == 3
    assert [h["value"] for h in version_history(records, 3, "mae")] == [4.0, 5.0]

    # a second run finds nothing to do
    assert main(["migrate-layout", "--model", "air_time", "--data-root", str(root)]) == 0
    assert "nothing to move" in capsys.readouterr().out
    assert _digests(root) == after


def test_a_move_that_would_overwrite_or_take_another_models_records_moves_nothing(tmp_path):
    root = _old_root(tmp_path / "data")
    taken = root / "models" / "air_time" / "predictions" / f"ds={DAYS[1]}"
    taken.mkdir(parents=True)
    before = _digests(root)
    with pytest.raises(LayoutError, match="1 target\\(s\\) exist already; nothing was moved"):
        migrate(str(root), MODEL)
    assert _digests(root) == before

    other = _old_root(tmp_path / "other", model_name="taxi_fares")
    before = _digests(other)
    with pytest.raises(LayoutError, match=r"written by \['taxi_fares'\], not by flights_air_time"):
        migrate(str(other), MODEL)
    assert _digests(other) == before
    assert main(["migrate-layout", "--model", "air_time", "--data-root", str(other)]) == 1
