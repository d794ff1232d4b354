"""Training the Cosine Adapter on (query, candidate) pairs from the first stage's own top-K lists."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional
from tqdm import tqdm

from adapters.calibration import (
    average_precision,
    choose_threshold,
    expected_calibration_error,
    reliability_table,
)
from adapters.cosine import CosineAdapter, score_list_features
from adapters.errors import AdapterError


@dataclass(frozen=True)
class CandidateLists:
    """m queries with up to K first-stage candidates each, padded.

    Attributes:
        queries: (m, d) float32 query embeddings.
        scores: (m, K) float32 raw cosines, in first-stage order; padding is 0.
        labels: (m, K) bool, True where the candidate is relevant (qrel grade > 0).
        mask: (m, K) bool, True for real entries.
        extra: (m, F) float32 per-query features beyond the score list's shape (`arm_features()` of a hybrid
            first stage), or None.
        first_stage: the first stage the lists come from ("dense", "hybrid", ...).
        cosines: (m, K) float32 each candidate's raw cosine when `scores` are something else (a hybrid first
            stage's fused scores), for the raw-cosine cut-off baseline; None when `scores` are the cosines.
    """

    queries: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    labels: npt.NDArray[np.bool_]
    mask: npt.NDArray[np.bool_]
    extra: npt.NDArray[np.float32] | None = None
    first_stage: str = "dense"
    cosines: npt.NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        m, k = self.scores.shape
        if self.queries.shape[0] != m or self.labels.shape != (m, k) or self.mask.shape != (m, k):
            raise AdapterError(
                f"inconsistent candidate lists: queries {self.queries.shape}, scores {self.scores.shape}, "
                f"labels {self.labels.shape}, mask {self.mask.shape}"
            )
        if self.extra is not None and self.extra.shape[0] != m:
            raise AdapterError(f"extra features {self.extra.shape} do not match {m} queries")
        if self.cosines is not None and self.cosines.shape != (m, k):
            raise AdapterError(f"cosines {self.cosines.shape} do not match scores {self.scores.shape}")

    @property
    def extra_width(self) -> int:
        return 0 if self.extra is None else int(self.extra.shape[1])

    def features(self) -> npt.NDArray[np.float32]:
        """(m, 4 + F) score-list features (from real entries only), then the extra features."""
        shape = np.stack([score_list_features(row[keep]) for row, keep in zip(self.scores, self.mask, strict=True)])
        if self.extra is None:
            return shape
        return np.concatenate([shape, self.extra], axis=1).astype(np.float32)


@dataclass(frozen=True)
class CosineTrainingConfig:
    """How to train: map family, optimiser, early stopping, threshold goal; `seed` fixes everything random."""

    family: str = "linear"
    hidden: int = 64
    epochs: int = 300
    patience: int = 25
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    batch_queries: int = 64
    margin: float = 0.1
    margin_weight: float = 0.05
    min_results: int = 1
    target_recall: float | None = None
    seed: int = 13


def _loss(
    model: CosineAdapter, batch: dict[str, torch.Tensor], config: CosineTrainingConfig, anchor: float
) -> torch.Tensor:
    logits = model(batch["queries"], batch["features"], batch["scores"])
    mask, labels = batch["mask"], batch["labels"]
    bce = functional.binary_cross_entropy_with_logits(logits[mask], labels[mask])
    if config.margin_weight == 0.0:
        return bce
    p = torch.sigmoid(logits)
    positives, negatives = mask & (labels > 0.5), mask & (labels < 0.5)
    push_up = functional.relu(anchor + config.margin - p[positives]).mean() if positives.any() else p.sum() * 0
    push_down = functional.relu(p[negatives] - (anchor - config.margin)).mean() if negatives.any() else p.sum() * 0
    return bce + config.margin_weight * (push_up + push_down)


def _tensors(lists: CandidateLists) -> dict[str, torch.Tensor]:
    return {
        "queries": torch.from_numpy(np.ascontiguousarray(lists.queries, dtype=np.float32)),
        "features": torch.from_numpy(lists.features()),
        "scores": torch.from_numpy(np.ascontiguousarray(lists.scores, dtype=np.float32)),
        "labels": torch.from_numpy(lists.labels.astype(np.float32)),
        "mask": torch.from_numpy(lists.mask),
    }


@torch.no_grad()
def predict(model: CosineAdapter, lists: CandidateLists) -> npt.NDArray[np.float32]:
    """(m, K) probabilities for padded candidate lists (padding entries are meaningless)."""
    tensors = _tensors(lists)
    return torch.sigmoid(model(tensors["queries"], tensors["features"], tensors["scores"])).numpy()


def fit_cosine_adapter(
    train: CandidateLists,
    dev: CandidateLists,
    config: CosineTrainingConfig | None = None,
    *,
    progress: bool = True,
) -> tuple[CosineAdapter, dict[str, Any]]:
    """Train on `train`, early-stop on dev BCE, then choose τ on dev. Returns the adapter and its report.

    The loss is binary cross-entropy plus a threshold-margin term pushing positives above 0.5 + margin and
    negatives below 0.5 - margin, which keeps the chosen τ in a stable place across retrains.
    """
    config = config or CosineTrainingConfig()
    if not train.labels[train.mask].any():
        raise AdapterError("the training candidates hold no relevant document: nothing to learn from")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = np.random.default_rng(config.seed)
    if (train.extra_width, train.first_stage) != (dev.extra_width, dev.first_stage):
        raise AdapterError(
            f"train and dev lists differ: {train.first_stage} with {train.extra_width} extra features vs "
            f"{dev.first_stage} with {dev.extra_width}"
        )
    model = CosineAdapter(
        train.queries.shape[1],
        config.hidden,
        config.family,
        arm_features=train.extra_width,
        first_stage=train.first_stage,
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    train_tensors, dev_tensors = _tensors(train), _tensors(dev)
    best_loss, best_state, best_epoch, history = float("inf"), copy.deepcopy(model.state_dict()), 0, []
    bar = tqdm(range(1, config.epochs + 1), desc="train cosine", disable=not progress)
    for epoch in bar:
        model.train()
        order = generator.permutation(train.queries.shape[0])
        for start in range(0, len(order), config.batch_queries):
            index = torch.from_numpy(order[start : start + config.batch_queries])
            batch = {name: tensor[index] for name, tensor in train_tensors.items()}
            optimiser.zero_grad()
            _loss(model, batch, config, 0.5).backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        model.eval()
        with torch.no_grad():
            dev_loss = float(_loss(model, dev_tensors, config, 0.5))
        history.append(round(dev_loss, 6))
        bar.set_postfix(dev_loss=f"{dev_loss:.4f}")
        if dev_loss < best_loss - 1e-6:
            best_loss, best_state, best_epoch = dev_loss, copy.deepcopy(model.state_dict()), epoch
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    dev_p = predict(model, dev)
    threshold, dev_scores = choose_threshold(dev_p, dev.labels, dev.mask, config.min_results, config.target_recall)
    model.threshold = threshold
    report = {
        "config": asdict(config),
        "train": {
            "queries": int(train.queries.shape[0]),
            "pairs": int(train.mask.sum()),
            "positives": int((train.labels & train.mask).sum()),
        },
        "dev": {
            "queries": int(dev.queries.shape[0]),
            "pairs": int(dev.mask.sum()),
            "positives": int((dev.labels & dev.mask).sum()),
        },
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "dev_loss_history": history,
        "threshold": threshold,
        "goal": "max_f1" if config.target_recall is None else f"recall>={config.target_recall}",
        "dev_returned_set": dev_scores.as_dict(),
        "dev_pr_auc": average_precision(dev_p, dev.labels, dev.mask),
        "dev_pr_auc_raw_cosine": average_precision(dev.scores, dev.labels, dev.mask),
        "dev_ece": expected_calibration_error(dev_p, dev.labels, dev.mask),
        "dev_reliability": reliability_table(dev_p, dev.labels, dev.mask),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return model, report
