"""A fitted Spark ML pipeline, read from the files Spark saved and evaluated without a JVM.

A Spark session per request costs seconds; the forests the platform trains answer in microseconds
once their trees are in memory. ``Pipeline.load`` reads the ``sparkml`` folder of a logged model
(the metadata and the parquet files Spark's own ``save`` wrote) into plain arrays, and
``Pipeline.predict`` computes what ``PipelineModel.transform`` computes, stage by stage, with the
same arithmetic: the tests compare both on every row of a scored day.

The stages read are those the platform's pipelines are made of (``spark_jobs.pipelines``, the
models' ``pipeline.py``): ``StringIndexerModel``, the ``SQLTransformer`` that fills missing
numbers, ``VectorAssembler``, then a decision tree, a random forest or gradient-boosted trees, for
regression or classification. Any other stage is refused when the model is loaded
(``UnsupportedModel``, naming the stage), never guessed at when it answers.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPARK_MODEL_DATA = "sparkml"  # where MLflow's Spark flavour keeps the pipeline in a logged model


class UnsupportedModel(ValueError):
    """A saved pipeline this engine cannot evaluate exactly."""


def _metadata(stage_dir: Path) -> dict:
    files = sorted((stage_dir / "metadata").glob("part-*"))
    if not files:
        raise UnsupportedModel(f"{stage_dir}: no metadata/part-* file (not a saved Spark ML stage)")
    return json.loads(files[0].read_text().splitlines()[0])


def _param(meta: dict, name: str, default=None):
    if name in meta.get("paramMap", {}):
        return meta["paramMap"][name]
    return meta.get("defaultParamMap", {}).get(name, default)


def _parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(str(path)).to_pylist()


def _short(cls: str) -> str:
    return cls.rsplit(".", 1)[-1]


# ------------------------------------------------------------------------------ feature stages


@dataclass
class StringIndexer:
    """Each input column's value to its index among the fitted labels; a value the fit never saw,
    or a missing one, to one more index when ``handleInvalid`` is ``keep``."""

    inputs: list[str]
    outputs: list[str]
    labels: list[dict[str, int]]
    keep_invalid: bool

    @classmethod
    def load(cls, stage_dir: Path, meta: dict) -> StringIndexer:
        inputs = _param(meta, "inputCols") or [_param(meta, "inputCol")]
        outputs = _param(meta, "outputCols") or [_param(meta, "outputCol")]
        (data,) = _parquet(stage_dir / "data")
        arrays = data.get("labelsArray") or [data["labels"]]
        handle = _param(meta, "handleInvalid", "error")
        if handle not in ("keep", "error"):
            raise UnsupportedModel(f"StringIndexerModel with handleInvalid={handle!r} drops rows")
        return cls(inputs, outputs, [{v: i for i, v in enumerate(a)} for a in arrays], handle == "keep")

    def apply(self, columns: dict[str, np.ndarray]) -> None:
        for source, target, index in zip(self.inputs, self.outputs, self.labels, strict=True):
            unseen = len(index)
            values = columns[source]
            try:  # the labels are strings: anything else (None, a number, NaN) is not among them
                found = list(map(index.get, values, itertools.repeat(unseen, len(values))))
            except TypeError:  # a value that cannot be looked up at all
                found = [index.get(v, unseen) if isinstance(v, str) else unseen for v in values]
            if not self.keep_invalid and unseen in found:
                value = values[found.index(unseen)]
                raise ValueError(f"{source}: {value!r} was not seen when the model was fitted")
            columns[target] = np.array(found, dtype=np.float64)


# The statement ``spark_jobs.pipelines.tabular_stages`` writes: each numeric column cast to double,
# a missing value replaced by a constant.
_FILL = re.compile(r"COALESCE\(CAST\((\w+) AS DOUBLE\), ([-+0-9.eE]+)\) AS (\w+)")


@dataclass
class FillMissing:
    """The ``SQLTransformer`` of the platform's pipelines: ``COALESCE(CAST(c AS DOUBLE), m) AS t``."""

    fills: list[tuple[str, float, str]]

    @classmethod
    def load(cls, stage_dir: Path, meta: dict) -> FillMissing:
        statement = _param(meta, "statement") or ""
        fills = [(c, float(m), t) for c, m, t in _FILL.findall(statement)]
        expected = (
            "SELECT *, "
            + ", ".join(f"COALESCE(CAST({c} AS DOUBLE), {m}) AS {t}" for c, m, t in _FILL.findall(statement))
            + " FROM __THIS__"
        )
        if not fills or " ".join(statement.split()) != expected:
            raise UnsupportedModel(f"SQLTransformer statement not of the platform's form: {statement!r}")
        return cls(fills)

    def apply(self, columns: dict[str, np.ndarray]) -> None:
        for source, missing, target in self.fills:
            columns[target] = _as_double(columns[source], missing)


def _as_double(values, missing: float) -> np.ndarray:
    """Numbers as doubles, a missing value (None, or NaN as pandas shows a null) as ``missing``."""
    out = np.array([missing if value is None else value for value in values], dtype=np.float64)
    out[np.isnan(out)] = missing
    return out


@dataclass
class Assembler:
    inputs: list[str]
    output: str

    @classmethod
    def load(cls, stage_dir: Path, meta: dict) -> Assembler:
        return cls(list(_param(meta, "inputCols")), _param(meta, "outputCol"))

    def apply(self, columns: dict[str, np.ndarray]) -> None:
        columns[self.output] = np.column_stack([columns[c] for c in self.inputs]).astype(np.float64)


# ------------------------------------------------------------------------------ trees


@dataclass
class Trees:
    """Every tree of a model in flat arrays (the nodes of all trees one after the other), for a
    walk of all rows through all trees at once.

    ``feature`` is -1 at a leaf. A continuous split sends a row left when its value is at most
    ``threshold``; a categorical one when the value is among the left categories (row ``slot`` of
    ``left_table``). ``value`` is what a leaf holds: the prediction (regression, boosting) or the
    class counts normalized to shares (classification)."""

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    slot: np.ndarray
    left_table: np.ndarray
    value: np.ndarray
    depth: int

    @classmethod
    def build(cls, trees: list[list[dict]], classification: bool) -> Trees:
        roots, feature, threshold, left, right, slot, value, tables = [], [], [], [], [], [], [], []
        depth = 0
        for nodes in trees:
            by_id = {n["id"]: n for n in nodes}
            base = len(feature)
            order = sorted(by_id)
            position = {node_id: base + i for i, node_id in enumerate(order)}
            roots.append(position[_root_id(by_id)])
            depth = max(depth, _depth(by_id, _root_id(by_id)))
            for node_id in order:
                node = by_id[node_id]
                if node["leftChild"] < 0:
                    feature.append(-1)
                    threshold.append(0.0)
                    left.append(position[node_id])
                    right.append(position[node_id])
                    slot.append(-1)
                else:
                    split = node["split"]
                    feature.append(split["featureIndex"])
                    left.append(position[node["leftChild"]])
                    right.append(position[node["rightChild"]])
                    if split["numCategories"] >= 0:
                        slot.append(len(tables))
                        tables.append((split["numCategories"], split["leftCategoriesOrThreshold"]))
                        threshold.append(0.0)
                    else:
                        slot.append(-1)
                        threshold.append(split["leftCategoriesOrThreshold"][0])
                value.append(_leaf_value(node, classification))
        width = max([n for n, _ in tables] + [1])
        left_table = np.zeros((max(len(tables), 1), width), dtype=bool)
        for i, (_, categories) in enumerate(tables):
            left_table[i, [int(c) for c in categories]] = True
        if classification:
            classes = max(len(v) for v in value)
            value = [list(v) + [0.0] * (classes - len(v)) for v in value]
        return cls(
            np.asarray(roots, dtype=np.int64),
            np.asarray(feature, dtype=np.int64),
            np.asarray(threshold, dtype=np.float64),
            np.asarray(left, dtype=np.int64),
            np.asarray(right, dtype=np.int64),
            np.asarray(slot, dtype=np.int64),
            left_table,
            np.asarray(value, dtype=np.float64),
            depth,
        )

    # Up to this many rows, the rows walk the trees one by one in plain Python: a walk of all rows
    # at once pays a fixed cost per array operation, a few of them per level of depth, which for one
    # row is most of the time of an answer.
    FEW_ROWS = 8

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree: shape (rows, trees)."""
        rows = x.shape[0]
        if rows <= self.FEW_ROWS:
            return np.asarray([self._walk(values) for values in x.tolist()], dtype=np.int64).reshape(
                rows, len(self.roots)
            )
        return self._walk_all(x)

    def _walk_all(self, x: np.ndarray) -> np.ndarray:
        """All rows through all trees, a level at a time. A leaf is its own child both ways
        (``build``), so every row takes a step at every level. A row goes left when its value is
        at most the threshold, or, at a categorical split, when the value is among the left
        categories (a NaN, or a category outside the table, goes right)."""
        rows, width = x.shape
        flat = np.ascontiguousarray(x, dtype=np.float64).ravel()
        feature = np.where(self.feature >= 0, self.feature, 0)
        children = np.stack([self.left, self.right], axis=1).ravel()
        categories = self.left_table.shape[1]
        base = (np.arange(rows, dtype=np.int64) * width)[:, None]
        node = np.tile(self.roots, (rows, 1))
        for _ in range(self.depth):
            v = flat[base + feature[node]]
            go_left = v <= self.threshold[node]
            slot = self.slot[node]
            categorical = slot >= 0
            if categorical.any():
                value = v[categorical]
                known = (value >= 0) & (value < categories)
                category = np.where(known, value, 0).astype(np.int64)
                go_left[categorical] = self.left_table[slot[categorical], category] & known
            node = children[node * 2 + ~go_left]
        return node

    def _walk(self, values: list[float]) -> list[int]:
        """One row through every tree: the same decisions as ``leaves`` makes for all rows (a NaN
        or a category outside the table goes right)."""
        plain = self.__dict__.get("_plain")
        if plain is None:
            plain = self.__dict__["_plain"] = (
                self.roots.tolist(),
                self.feature.tolist(),
                self.threshold.tolist(),
                self.left.tolist(),
                self.right.tolist(),
                self.slot.tolist(),
                self.left_table.tolist(),
                self.left_table.shape[1],
            )
        roots, feature, threshold, left, right, slot, table, width = plain
        reached = []
        for node in roots:
            f = feature[node]
            while f >= 0:
                v = values[f]
                s = slot[node]
                if s >= 0:
                    go_left = 0 <= v < width and table[s][int(v)]
                else:
                    go_left = v <= threshold[node]
                node = left[node] if go_left else right[node]
                f = feature[node]
            reached.append(node)
        return reached


def _root_id(by_id: dict) -> int:
    children = {n["leftChild"] for n in by_id.values()} | {n["rightChild"] for n in by_id.values()}
    (root,) = [i for i in by_id if i not in children]
    return root


def _depth(by_id: dict, node_id: int) -> int:
    node = by_id[node_id]
    if node["leftChild"] < 0:
        return 0
    return 1 + max(_depth(by_id, node["leftChild"]), _depth(by_id, node["rightChild"]))


def _leaf_value(node: dict, classification: bool):
    if not classification:
        return node["prediction"]
    counts = node["impurityStats"]
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def _tree_nodes(stage_dir: Path, ensemble: bool) -> list[list[dict]]:
    rows = _parquet(stage_dir / "data")
    if not ensemble:
        return [rows]
    trees: dict[int, list[dict]] = {}
    for row in rows:
        trees.setdefault(row["treeID"], []).append(row["nodeData"])
    return [trees[i] for i in sorted(trees)]


def _tree_weights(stage_dir: Path) -> list[float]:
    """Each tree's weight, in tree order (Spark writes the columns as a tuple: ``_1`` the tree's
    id, ``_2`` its metadata, ``_3`` its weight)."""
    rows = _parquet(stage_dir / "treesMetadata")
    rows = [(r.get("treeID", r.get("_1")), r.get("weights", r.get("_3"))) for r in rows]
    return [float(weight) for _, weight in sorted(rows)]


@dataclass
class TreeModel:
    """A tree-based predictor; ``predict`` gives, per row, the estimate of a regression or the
    chance of class 1 of a (binary) classification, as ``spark_jobs.scoring`` records them."""

    kind: str  # "tree", "forest" or "boosted"
    classification: bool
    trees: Trees
    weights: np.ndarray
    features_col: str

    @classmethod
    def load(cls, stage_dir: Path, meta: dict) -> TreeModel:
        name = _short(meta["class"])
        kind = {
            "DecisionTreeRegressionModel": "tree",
            "DecisionTreeClassificationModel": "tree",
            "RandomForestRegressionModel": "forest",
            "RandomForestClassificationModel": "forest",
            "GBTRegressionModel": "boosted",
            "GBTClassificationModel": "boosted",
        }[name]
        classification = "Classification" in name
        if classification and kind != "boosted" and int(meta.get("numClasses", 2)) != 2:
            raise UnsupportedModel(f"{name} of {meta.get('numClasses')} classes: only two are scored")
        nodes = _tree_nodes(stage_dir, ensemble=kind != "tree")
        weights = _tree_weights(stage_dir) if kind != "tree" else [1.0]
        trees = Trees.build(nodes, classification and kind != "boosted")
        return cls(kind, classification, trees, np.asarray(weights), _param(meta, "featuresCol", "features"))

    def predict(self, x: np.ndarray) -> np.ndarray:
        values = self.trees.value[self.trees.leaves(x)]  # (rows, trees) or (rows, trees, classes)
        if self.kind == "boosted":
            # Spark: the weighted sum of the trees' predictions, tree by tree
            margin = np.zeros(x.shape[0])
            for t, weight in enumerate(self.weights):
                margin = margin + weight * values[:, t]
            if not self.classification:
                return margin
            return 1.0 / (1.0 + np.exp(-2.0 * margin))  # GBTClassificationModel's probability of 1
        if not self.classification:
            total = np.zeros(x.shape[0])
            for t in range(values.shape[1]):
                total = total + values[:, t]
            return total / values.shape[1]
        # the classes' shares summed over the trees (votes), then normalized: the chance of class 1
        votes = np.zeros((x.shape[0], values.shape[2]))
        for t in range(values.shape[1]):
            votes = votes + values[:, t, :]
        return votes[:, 1] / votes.sum(axis=1)


# ------------------------------------------------------------------------------ the pipeline

_FEATURE_STAGES = {
    "StringIndexerModel": StringIndexer,
    "SQLTransformer": FillMissing,
    "VectorAssembler": Assembler,
}


@dataclass
class Pipeline:
    """The stages of a saved ``PipelineModel``; ``columns`` are the input columns it reads."""

    stages: list
    predictor: TreeModel
    columns: list[str]

    @classmethod
    def load(cls, model_dir: str | Path) -> Pipeline:
        """From a logged model's folder (holding ``sparkml/``) or a saved pipeline's own folder."""
        root = Path(model_dir)
        found = [root / SPARK_MODEL_DATA, *sorted(root.glob(f"*/{SPARK_MODEL_DATA}"))]
        root = next((f for f in found if f.is_dir()), root)
        meta = _metadata(root)
        if _short(meta["class"]) != "PipelineModel":
            raise UnsupportedModel(f"{root}: a {meta['class']}, not a PipelineModel")
        uids = _param(meta, "stageUids")
        stages = []
        for i, uid in enumerate(uids):
            stage_dir = root / "stages" / f"{i}_{uid}"
            stage_meta = _metadata(stage_dir)
            name = _short(stage_meta["class"])
            if name in _FEATURE_STAGES:
                stages.append(_FEATURE_STAGES[name].load(stage_dir, stage_meta))
            elif name.endswith(("RegressionModel", "ClassificationModel")) and name.startswith(
                ("DecisionTree", "RandomForest", "GBT")
            ):
                if i != len(uids) - 1:
                    raise UnsupportedModel(f"{name} is stage {i}, not the last one")
                stages.append(TreeModel.load(stage_dir, stage_meta))
            else:
                raise UnsupportedModel(
                    f"stage {i} is a {stage_meta['class']}, which this engine does not evaluate"
                )
        if not stages or not isinstance(stages[-1], TreeModel):
            raise UnsupportedModel(f"{root}: the last stage is not a tree-based predictor")
        return cls(stages[:-1], stages[-1], _inputs(stages))

    def predict(self, rows) -> np.ndarray:
        """One prediction per row. ``rows``: a pandas DataFrame, a list of dicts, or a dict of
        columns (name to a list of values), holding at least ``columns`` (a missing value as None
        or NaN)."""
        if isinstance(rows, dict):  # already column by column
            columns = dict(rows)
        elif isinstance(rows, list):
            try:
                columns = {c: list(map(operator.itemgetter(c), rows)) for c in self.columns}
            except KeyError:  # a row without a column: missing
                columns = {c: [r.get(c) for r in rows] for c in self.columns}
        else:
            columns = {c: rows[c].to_numpy(dtype=object) for c in self.columns}
        for stage in self.stages:
            stage.apply(columns)
        return self.predictor.predict(columns[self.predictor.features_col])


def _inputs(stages: list) -> list[str]:
    """The columns the pipeline reads that no stage of it makes, in the order first read."""
    made: set[str] = set()
    needed: list[str] = []
    for stage in stages:
        if isinstance(stage, StringIndexer):
            reads, makes = stage.inputs, stage.outputs
        elif isinstance(stage, FillMissing):
            reads, makes = [s for s, _, _ in stage.fills], [t for _, _, t in stage.fills]
        elif isinstance(stage, Assembler):
            reads, makes = stage.inputs, [stage.output]
        else:
            reads, makes = [stage.features_col], []
        needed += [c for c in reads if c not in made and c not in needed]
        made.update(makes)
    return needed
