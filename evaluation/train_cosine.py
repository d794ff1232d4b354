"""`glassbox train cosine`: first-stage candidates of train and dev queries -> a Cosine Adapter artifact."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from adapters import CosineTrainingConfig, EncoderSignature, fit_cosine_adapter
from evaluation.beir import BeirDataset
from evaluation.corpus import CorpusIndex
from evaluation.errors import DatasetFormatError
from service.encoder import Encoder
from service.first_stage import build_retriever, describe_first_stage
from service.settings import Settings


def train_cosine(
    dataset_path: Path,
    out: Path,
    settings: Settings,
    encoder: Encoder,
    config: CosineTrainingConfig | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on the train split's top-K lists (the K the filter sees in serving), select on dev, save to `out`.

    Returns the training report (also saved in the artifact, with a reliability diagram on dev).
    """
    dataset = BeirDataset(dataset_path)
    texts = dataset.queries()
    train, dev = dataset.split("train"), dataset.split("dev")
    train_ids = sorted(q for q in train.qrels if q in texts)
    dev_ids = sorted(q for q in dev.qrels if q in texts)
    if not train_ids or not dev_ids:
        raise DatasetFormatError(f"{dataset.path} needs train and dev queries with text to train on")
    candidates = settings.search.candidates
    # the filter learns on the first stage it will serve behind; a hybrid one uses the fusion weight tuned
    # beside the output artifact (out/../fusion) when there is one
    retriever = build_retriever(settings, adapters_dir=out.parent)
    with CorpusIndex(dataset, settings, encoder, candidates, progress=progress) as corpus:
        train_lists = corpus.candidate_lists(train_ids, texts, train.qrels, retriever)
        dev_lists = corpus.candidate_lists(dev_ids, texts, dev.qrels, retriever)
    adapter, report = fit_cosine_adapter(train_lists, dev_lists, config, progress=progress)
    report = {
        **report,
        "dataset": dataset.name,
        "train_source": train.source,
        "dev_source": dev.source,
        "candidates": candidates,
        "first_stage": describe_first_stage(retriever),
        "encoder": {"name": encoder.identity.name, "revision": encoder.identity.revision},
    }
    signature = EncoderSignature(encoder.identity.name, encoder.identity.dimension)
    adapter.save(out, signature, report, files={"reliability.png": reliability_png(report)})
    return report


def reliability_png(report: dict[str, Any]) -> bytes:
    """Reliability diagram (predicted vs observed relevance per bin, dev split) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = [b for b in report["dev_reliability"] if b["count"]]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    left.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    left.plot([b["mean_p"] for b in bins], [b["observed"] for b in bins], marker="o", label="Cosine Adapter")
    left.set_xlabel("predicted relevance p (bin mean)")
    left.set_ylabel("observed share relevant")
    left.set_title(f"dev reliability, ECE {report['dev_ece']:.3f}")
    left.legend()
    right.bar(
        [b["lower"] + 0.05 for b in report["dev_reliability"]],
        [b["count"] for b in report["dev_reliability"]],
        width=0.09,
    )
    right.set_yscale("log")
    right.axvline(report["threshold"], color="red", label=f"τ = {report['threshold']:.3f}")
    right.set_xlabel("predicted relevance p")
    right.set_ylabel("pairs (log)")
    right.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
