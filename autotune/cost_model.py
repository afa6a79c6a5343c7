"""The cost model: gradient-boosted trees (XGBoost) from candidate features to relative speed.

A small adapter over ``xgboost`` with three objectives (autoTVM tried the first and the last):

* ``"reg"``: regression on normalised throughput, ``y = best cost / cost`` per
  task (1 for the fastest candidate seen, 0 for a failed one);
* ``"log"``: regression on its logarithm, ``y = log2(best cost / cost)`` (0 for
  the fastest, one below the slowest for a failed one): a factor of two counts
  the same among slow candidates as among fast ones;
* ``"rank"``: ``rank:pairwise`` on the same labels, one query group per task,
  so only the order within a task is learnt.

Either way :meth:`CostModel.predict` returns scores where higher means faster;
only their order is meaningful for ``"rank"``. Measurements of other tasks
(``group`` ids) can be fitted together with the current task's: transfer
learning works with loop features, whose meaning does not depend on the task.

    >>> import numpy as np
    >>> x = np.arange(20.0).reshape(-1, 1)
    >>> model = CostModel("reg").fit(x, costs=1.0 + (x[:, 0] - 7) ** 2)
    >>> int(np.argmax(model.predict(x)))
    7
"""

from __future__ import annotations

import numpy as np

OBJECTIVES = ("reg", "log", "rank")

# Shallow trees, as autoTVM: the data are a few hundred points at most.
_PARAMS = {"max_depth": 3, "eta": 0.3, "gamma": 1e-4, "min_child_weight": 1.0, "subsample": 1.0,
           "lambda": 1.0, "alpha": 0.0, "verbosity": 0, "nthread": 1}
_OBJECTIVE_PARAMS = {
    "reg": {"objective": "reg:squarederror"},
    "log": {"objective": "reg:squarederror"},
    # xgboost >= 2 samples "topk" pairs by default; autoTVM's setup compared random pairs of the whole group.
    "rank": {"objective": "rank:pairwise", "lambdarank_pair_method": "mean", "lambdarank_num_pair_per_sample": 8},
}


def log_throughput(costs: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """``log2(best cost / cost)`` within each group (0 = fastest; a failed candidate gets one below the
    group's slowest)."""
    ratio = normalized_throughput(costs, groups)
    groups = np.zeros(len(ratio), dtype=np.int64) if groups is None else np.asarray(groups)
    labels = np.zeros(len(ratio))
    for g in np.unique(groups):
        members = groups == g
        ok = members & (ratio > 0)
        labels[ok] = np.log2(ratio[ok])
        labels[members & (ratio <= 0)] = (labels[ok].min() if ok.any() else 0.0) - 1.0
    return labels


def normalized_throughput(costs: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """``best cost / cost`` within each group (1 = fastest, 0 = failed, i.e. infinite or NaN cost)."""
    costs = np.asarray(costs, dtype=float)
    groups = np.zeros(len(costs), dtype=np.int64) if groups is None else np.asarray(groups)
    labels = np.zeros(len(costs))
    ok = np.isfinite(costs) & (costs > 0)
    for g in np.unique(groups):
        members = (groups == g) & ok
        if members.any():
            labels[members] = costs[members].min() / costs[members]
    return labels


class CostModel:
    """XGBoost over candidate features, refitted from scratch on every :meth:`fit`."""

    def __init__(self, objective: str = "reg", *, rounds: int = 80, seed: int = 0):
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown cost-model objective {objective!r}; expected one of {OBJECTIVES}")
        self.objective, self.rounds, self.seed = objective, rounds, seed
        self._booster = None

    @property
    def trained(self) -> bool:
        return self._booster is not None

    def fit(self, features: np.ndarray, costs: np.ndarray, groups: np.ndarray | None = None) -> CostModel:
        """Train on measured candidates: rows of ``features``, their ``costs`` in seconds (inf when the
        trial failed), and optionally the task each row belongs to (``groups``, for transfer)."""
        import xgboost as xgb

        features = np.asarray(features, dtype=float)
        groups = np.zeros(len(features), dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
        labels = (log_throughput if self.objective == "log" else normalized_throughput)(costs, groups)
        if self.objective == "rank":
            order = np.argsort(groups, kind="stable")  # xgboost wants each query group contiguous
            features, labels, groups = features[order], labels[order], groups[order]
            data = xgb.DMatrix(features, label=labels, qid=groups, nthread=1)
        else:
            data = xgb.DMatrix(features, label=labels, nthread=1)
        params = {**_PARAMS, **_OBJECTIVE_PARAMS[self.objective], "seed": self.seed}
        self._booster = xgb.train(params, data, num_boost_round=self.rounds)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores of candidates (higher = predicted faster); zeros before the first :meth:`fit`."""
        features = np.asarray(features, dtype=float)
        if self._booster is None or not len(features):
            return np.zeros(len(features))
        return self._booster.inplace_predict(features)


def make_cost_model(name: str, seed: int = 0) -> CostModel:
    """A cost model by name: ``"xgb-reg"``, ``"xgb-log"`` or ``"xgb-rank"``."""
    prefix, _, objective = name.partition("-")
    if prefix != "xgb" or objective not in OBJECTIVES:
        raise ValueError(f"unknown cost model {name!r}; expected 'xgb-reg', 'xgb-log' or 'xgb-rank'")
    return CostModel(objective, seed=seed)
