"""Metrics on tiny hand-computed cases, and a cross-check against pytrec_eval on a larger random case."""

from __future__ import annotations

import math
import random

import pytest
import pytrec_eval

from evaluation import METRICS, compare_to_baseline, score_ranking
from evaluation.beir import read_qrels, split_dev_from_train

QRELS = {"q1": {"d1": 2, "d2": 1, "d3": 0}, "q2": {"d4": 1}, "q3": {"d5": 1}}
RANKING = {"q1": ["d2", "d1", "d9"], "q2": [], "q3": ["d7", "d5"]}


def test_hand_computed_values_with_graded_relevance_and_an_empty_query() -> None:
    scores = score_ranking(QRELS, RANKING)
    # q1: DCG = 1/log2(2) + 2/log2(3); IDCG = 2/log2(2) + 1/log2(3). d3 (grade 0) is not relevant.
    ndcg_q1 = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    # q3: the only relevant document at rank 2.
    ndcg_q3 = (1 / math.log2(3)) / 1.0
    assert scores.per_query["ndcg@10"] == pytest.approx({"q1": ndcg_q1, "q2": 0.0, "q3": ndcg_q3})
    assert scores.means["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q3) / 3)  # q2 (no results) counts as 0
    assert scores.means["mrr@10"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert scores.means["recall@10"] == pytest.approx((1 + 0 + 1) / 3)
    assert scores.means["map@100"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert scores.per_query["recall@100"]["q2"] == 0.0


def test_order_given_is_the_order_scored() -> None:
    flipped = score_ranking({"q": {"a": 1}}, {"q": ["b", "a"]})
    assert flipped.means["mrr@10"] == 0.5
    assert score_ranking({"q": {"a": 1}}, {"q": ["a", "b"]}).means["mrr@10"] == 1.0


def test_query_missing_from_the_ranking_scores_zero() -> None:
    scores = score_ranking({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": ["a"]})
    assert scores.means["ndcg@10"] == pytest.approx(0.5)


def test_comparison_counts_wins_ties_losses_and_is_seeded() -> None:
    better = {"q1": ["d1", "d2"], "q2": ["d4"], "q3": ["d7", "d5"]}
    first = compare_to_baseline(QRELS, {"dense": RANKING, "better": better}, "dense", seed=7)
    again = compare_to_baseline(QRELS, {"dense": RANKING, "better": better}, "dense", seed=7)
    assert first == again
    mrr = first["better"]["mrr@10"]
    assert (mrr.wins, mrr.ties, mrr.losses) == (1, 2, 0)  # q2 improves; q1 and q3 keep their first hit
    assert mrr.delta == pytest.approx(1 / 3)
    assert 0.0 <= mrr.p_value <= 1.0
    assert compare_to_baseline(QRELS, {"dense": RANKING}, "dense") == {}


def test_matches_pytrec_eval_on_a_random_case() -> None:
    rng = random.Random(5)
    docs = [f"d{i}" for i in range(300)]
    qrels = {f"q{q}": {d: rng.choice([1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 12))} for q in range(60)}
    ranking = {q: rng.sample(docs, 100) for q in qrels}
    ours = score_ranking(qrels, ranking)

    def trec(run_depth: int, measures: set[str]) -> dict[str, dict[str, float]]:
        run = {q: {d: float(100 - r) for r, d in enumerate(ranked[:run_depth])} for q, ranked in ranking.items()}
        return dict(pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run))

    full = trec(100, {"ndcg_cut.10", "recall.10", "recall.100", "map_cut.100"})
    top10 = trec(10, {"recip_rank"})
    names = {"ndcg@10": "ndcg_cut_10", "recall@10": "recall_10", "recall@100": "recall_100", "map@100": "map_cut_100"}
    for metric, trec_name in names.items():
        for query in qrels:
            assert ours.per_query[metric][query] == pytest.approx(full[query][trec_name], abs=1e-9), (metric, query)
    for query in qrels:
        assert ours.per_query["mrr@10"][query] == pytest.approx(top10[query]["recip_rank"], abs=1e-9)
    assert set(METRICS) == {*names, "mrr@10"}


def test_qrels_parsing_strips_crlf_and_header(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "test.tsv"
    path.write_bytes(b"query-id\tcorpus-id\tscore\r\n1\t31715818\t1\r\n1\t99\t0\r\n3\t14717500\t2\r\n")
    assert read_qrels(path) == {"1": {"31715818": 1, "99": 0}, "3": {"14717500": 2}}


def test_dev_split_is_a_seeded_15_percent_of_train() -> None:
    train = {str(i): {"d": 1} for i in range(100)}
    rest, dev = split_dev_from_train(train)
    assert len(dev) == 15 and len(rest) == 85 and not set(dev) & set(rest)
    assert split_dev_from_train(train)[1] == dev
