"""Moving a data root of the one-model layout to the layout of many models.

Before, one model's records sat at the top of the data root; now each model keeps its own under
``models/<model>/`` (``mlcycle.config.model_root``)::

    predictions/ds=D                  -> models/<model>/predictions/ds=D
    monitoring/ds=D                   -> models/<model>/monitoring/ds=D
    monitoring_carrier/ds=D           -> models/<model>/monitoring_slices/ds=D  (slice = carrier)
    drift/ds=D                        -> models/<model>/drift/ds=D
    gates/predictions/ds=D.json       -> models/<model>/gates/predictions/ds=D.json
    data_docs/predictions/ds=D        -> data_docs/predictions/<model>/ds=D
    reports/monitoring_mae.png        -> models/<model>/reports/monitoring.png

Raw, validated, quarantined data, features, their verdicts and the archive stay where they are.
Nothing is overwritten and nothing is lost: a partition is moved by a rename (or, for the
per-carrier table, rewritten beside its target and renamed into place before the old one goes),
a target that exists already stops the command before anything moves, and a second run finds
nothing left to do. ``mlcycle migrate-layout --model air_time`` runs it (``--dry-run`` to look).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlcycle.config import model_root


class LayoutError(RuntimeError):
    """The data root cannot be moved as it is; the message says what to do."""


@dataclass(frozen=True)
class Move:
    source: Path
    target: Path
    convert: str | None = None  # "carrier_slices": rewritten, not renamed

    def __str__(self) -> str:
        how = " (rewritten with slice = carrier)" if self.convert else ""
        return f"{self.source} -> {self.target}{how}"


def _partitions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("ds=*") if p.is_dir()) if folder.is_dir() else []


def plan(data_root: str, model: str) -> list[Move]:
    """Every move the data root needs for ``model`` (empty when nothing of the old layout is left)."""
    root, records = Path(data_root), Path(model_root(data_root, model))
    moves: list[Move] = []
    for old, new in (("predictions", "predictions"), ("monitoring", "monitoring"), ("drift", "drift")):
        moves += [Move(p, records / new / p.name) for p in _partitions(root / old)]
    moves += [
        Move(p, records / "monitoring_slices" / p.name, "carrier_slices")
        for p in _partitions(root / "monitoring_carrier")
    ]
    verdicts = root / "gates" / "predictions"
    if verdicts.is_dir():
        moves += [
            Move(p, records / "gates" / "predictions" / p.name) for p in sorted(verdicts.glob("ds=*.json"))
        ]
    moves += [
        Move(p, root / "data_docs" / "predictions" / model / p.name)
        for p in _partitions(root / "data_docs" / "predictions")
    ]
    chart = root / "reports" / "monitoring_mae.png"
    if chart.is_file():
        moves.append(Move(chart, records / "reports" / "monitoring.png"))
    return moves


def _recorded_models(data_root: str) -> set[str]:
    """The model names written in the old predictions (each row names its model)."""
    import pyarrow.parquet as pq

    names: set[str] = set()
    for part in _partitions(Path(data_root) / "predictions"):
        for file in sorted(part.glob("*.parquet")):
            table = pq.read_table(file, columns=["model_name"])
            names.update(v for v in table.column("model_name").to_pylist() if v)
    return names


def _carrier_slices(source: Path, target: Path) -> None:
    """One ``monitoring_carrier/ds=D`` partition as ``monitoring_slices/ds=D`` rows, written beside
    the target and renamed into place."""
    import pandas as pd

    frame = pd.read_parquet(source)
    frame = frame.rename(columns={"carrier": "value"})
    frame.insert(frame.columns.get_loc("value"), "slice", "carrier")
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        frame.to_parquet(staged / "part-00000.parquet", index=False)
        os.rename(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    shutil.rmtree(source)


def migrate(data_root: str, model, dry_run: bool = False) -> list[Move]:
    """Move the data root's one-model records under ``models/<model>/`` (``model``: a
    ``mlcycle.specs.Model``). Refuses, before moving anything, when a target exists or when the
    old predictions were written by another registered model than ``model``'s."""
    moves = plan(data_root, model.name)
    if not moves:
        return []
    written_by = _recorded_models(data_root)
    if written_by - {model.registered_name}:
        raise LayoutError(
            f"the predictions under {data_root}/predictions were written by {sorted(written_by)}, not by "
            f"{model.registered_name} ({model.id}): migrate with --model naming the model that wrote them"
        )
    taken = [m for m in moves if m.target.exists()]
    if taken:
        listed = "\n".join(f"  {m.target}" for m in taken[:10])
        raise LayoutError(
            f"{len(taken)} target(s) exist already; nothing was moved. Compare them with their "
            f"sources and remove the ones not wanted, then run again:\n{listed}"
        )
    if dry_run:
        return moves
    for move in moves:
        if move.convert == "carrier_slices":
            _carrier_slices(move.source, move.target)
        else:
            move.target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(move.source, move.target)
    root = Path(data_root)
    for emptied in ("predictions", "monitoring", "monitoring_carrier", "drift", "gates/predictions"):
        folder = root / emptied
        left = list(folder.iterdir()) if folder.is_dir() else []
        # Spark's markers of a finished write (_SUCCESS and checksums) go with their folder
        if folder.is_dir() and all(p.is_file() and p.name.startswith(("_", ".")) for p in left):
            shutil.rmtree(folder)
    return moves
