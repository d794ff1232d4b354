"""`glassbox train imrnn`: first-stage top-K of train and dev queries -> an IMRNN artifact (λ chosen on dev)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adapters import EncoderSignature, ImrnnTrainingConfig, RankingLists, fit_imrnn, iterate_retrieval
from evaluation.beir import BeirDataset
from evaluation.corpus import CorpusIndex
from evaluation.errors import DatasetFormatError
from service.encoder import Encoder
from service.first_stage import FirstStageRetriever, build_retriever, describe_first_stage
from service.pipeline import SearchQuery
from service.settings import Settings

ITERATION_STUDY = (1, 2, 3)


def corpus_table(corpus: CorpusIndex, dataset: BeirDataset) -> tuple[list[str], np.ndarray]:
    """(document ids, (N, d) stored embeddings in that order) of the whole ingested corpus."""
    ids = list(dict.fromkeys(document.id for document in dataset.documents()))
    return ids, corpus.require_collection().vectors(ids)


def ranking_lists(
    corpus: CorpusIndex,
    table: tuple[list[str], np.ndarray],
    query_ids: Sequence[str],
    texts: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    candidates: int,
    retriever: FirstStageRetriever | None = None,
) -> RankingLists:
    """The first stage's top-`candidates` of each query (encoded through the cache), over the corpus table.

    `retriever` is the first stage (default dense); scores are what it hands on (fused scores for hybrid).
    """
    ids, documents = table
    row_of = {doc_id: row for row, doc_id in enumerate(ids)}
    collection = corpus.require_collection()
    base = corpus.pipeline(retriever=retriever)
    embeddings = corpus.cache.encode([texts[q] for q in query_ids])
    shape = (len(query_ids), candidates)
    rows, scores, grades = np.full(shape, -1, np.int64), np.zeros(shape, np.float32), np.zeros(shape, np.int64)
    judged: list[dict[int, int]] = []
    ideal = np.zeros(len(query_ids), np.float64)
    for i, (query_id, embedding) in enumerate(zip(query_ids, embeddings, strict=True)):
        relevant = {d: g for d, g in qrels.get(query_id, {}).items() if g > 0}
        judged.append({row_of[d]: g for d, g in relevant.items() if d in row_of})
        ideal[i] = RankingLists.ideal(list(relevant.values()))
        matches = base.retrieve(collection, SearchQuery(texts[query_id], top_k=candidates), embedding).matches
        for column, match in enumerate(matches[:candidates]):
            rows[i, column] = row_of[match.document.id]
            scores[i, column] = match.score
            grades[i, column] = relevant.get(match.document.id, 0)
    return RankingLists(embeddings, documents, rows, scores, grades, tuple(judged), ideal)


def load_split_lists(
    dataset: BeirDataset,
    splits: Sequence[str],
    settings: Settings,
    encoder: Encoder,
    *,
    progress: bool = True,
    retriever: FirstStageRetriever | None = None,
) -> tuple[dict[str, RankingLists], dict[str, str]]:
    """Ranking lists of each named split (queries with qrels and text) and each split's source."""
    texts = dataset.queries()
    candidates = settings.search.candidates
    lists: dict[str, RankingLists] = {}
    sources: dict[str, str] = {}
    with CorpusIndex(dataset, settings, encoder, candidates, progress=progress) as corpus:
        table = corpus_table(corpus, dataset)
        for name in splits:
            split = dataset.split(name)
            query_ids = sorted(q for q in split.qrels if q in texts)
            if not query_ids:
                raise DatasetFormatError(f"{dataset.path} has no {name} queries with text to train on")
            lists[name] = ranking_lists(corpus, table, query_ids, texts, split.qrels, candidates, retriever)
            sources[name] = split.source
    return lists, sources


def train_imrnn(
    dataset_path: Path,
    out: Path,
    settings: Settings,
    encoder: Encoder,
    config: ImrnnTrainingConfig | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on the train split's top-K lists, select the epoch and λ on dev, measure iterations, save to `out`.

    The iteration study re-retrieves over the whole corpus (see `adapters.iterate_retrieval`) and is reported,
    on dev only; the saved artifact serves one round (a pipeline stage cannot re-retrieve).
    Returns the training report (also saved in the artifact).
    """
    dataset = BeirDataset(dataset_path)
    # trained behind the first stage it will serve behind (GLASSBOX_FIRST_STAGE__MODE); a hybrid one uses the
    # fusion weight tuned beside the output artifact (out/../fusion) when there is one
    retriever = build_retriever(settings, adapters_dir=out.parent)
    lists, sources = load_split_lists(
        dataset, ("train", "dev"), settings, encoder, progress=progress, retriever=retriever
    )
    adapter, report = fit_imrnn(lists["train"], lists["dev"], config, progress=progress)
    study = {
        str(rounds): round(float(iterate_retrieval(adapter, lists["dev"], rounds).mean()), 6)
        for rounds in ITERATION_STUDY
    }
    report = {
        **report,
        "dataset": dataset.name,
        "train_source": sources["train"],
        "dev_source": sources["dev"],
        "candidates": settings.search.candidates,
        "first_stage": describe_first_stage(retriever),
        "dev_ndcg@10_by_iterations": study,
        "encoder": {
            "name": encoder.identity.name,
            "revision": encoder.identity.revision,
            "backend": encoder.identity.backend,
        },
    }
    adapter.save(out, EncoderSignature(encoder.identity.name, encoder.identity.dimension), report)
    return report
