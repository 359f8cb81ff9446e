"""A registered version of a model, fetched from MLflow and made ready to answer without a JVM."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mlcycle.serving.engine import Pipeline


def load_version(tracking_uri: str, registered_name: str, version: int | str, cache: str | Path) -> Pipeline:
    """``models:/<registered_name>/<version>`` downloaded under ``cache`` (once: a version's
    artifacts never change) and read by the engine. A version whose files cannot be read or hold a
    stage the engine does not evaluate raises here, before it answers anything."""
    import mlflow

    target = Path(cache) / registered_name / str(version)
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{registered_name}/{version}",
                dst_path=str(staging),
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
            staging.rename(target)  # whole or not at all: a half download is never read
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Pipeline.load(target)
