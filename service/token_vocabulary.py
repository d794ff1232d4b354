"""The word table IMRNN explanations are named from: vocabulary words encoded by the serving encoder, cached on disk.

Each whole word of the encoder's own tokeniser vocabulary (`adapters.word_tokens`: ASCII letters, 3+ characters,
no stopwords) is encoded alone by the serving encoder (unit length, the space of the pooled sentence embeddings).
That costs seconds, so the table is built once and stored under ``GLASSBOX_HOME/encoders/`` in a file named by the
encoder's name, revision and backend and a hash of the word list; later start-ups read it (milliseconds).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path

import numpy as np
from safetensors import safe_open

from adapters import TokenVocabulary, word_tokens
from service.encoder import Encoder, resolve_model_path
from service.errors import EncoderError

logger = logging.getLogger(__name__)
WORD_EMBEDDINGS_SUFFIX = "embeddings.word_embeddings.weight"


def model_vocabulary(model: str) -> list[str]:
    """The tokeniser vocabulary (`vocab.txt`, one entry a line) of a local sentence-transformers model.

    Raises:
        EncoderError: `model` has no local directory, or no `vocab.txt` in it.
    """
    directory = Path(resolve_model_path(model))
    if not directory.is_dir():
        raise EncoderError(f"encoder {model!r} has no local model directory to read a vocabulary from")
    vocab_files = sorted(directory.rglob("vocab.txt"))
    if not vocab_files:
        raise EncoderError(f"no vocab.txt in the model directory {directory}")
    vocabulary = vocab_files[0].read_text(encoding="utf-8").split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return vocabulary


def cache_path(cache_dir: Path, encoder: Encoder, words: list[str]) -> Path:
    """Where the table of `words` encoded by `encoder` is stored: name, revision, backend and word-list hash."""
    identity = encoder.identity
    digest = hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", identity.name).strip("_")[:80]
    return cache_dir / f"{slug}-{identity.revision}-{identity.backend}-words-{digest}.npz"


def encoded_vocabulary(encoder: Encoder, model: str, cache_dir: Path) -> TokenVocabulary:
    """The model's whole words encoded by `encoder`, read from `cache_dir` or built there (once).

    Raises:
        EncoderError: the model's vocabulary cannot be read, or holds no usable word.
    """
    words = word_tokens(model_vocabulary(model))
    if not words:
        raise EncoderError(f"the vocabulary of {model!r} holds no whole word to explain with")
    path = cache_path(cache_dir, encoder, words)
    if path.is_file():
        with np.load(path) as stored:
            tokens, matrix = [str(t) for t in stored["tokens"]], stored["embeddings"]
        if tokens == words and matrix.shape == (len(words), encoder.identity.dimension):
            return TokenVocabulary.from_arrays(matrix, tokens)
        logger.warning("ignoring the word table %s: it does not match the vocabulary; rebuilding it", path)
    started = time.perf_counter()
    matrix = encoder.encode(words)
    logger.info(
        "encoded %d vocabulary words for IMRNN explanations in %.1f s -> %s",
        len(words),
        time.perf_counter() - started,
        path,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(scratch, tokens=np.asarray(words), embeddings=np.asarray(matrix, dtype=np.float32))
    scratch.replace(path)  # atomic: a concurrent start-up reads the old file or the whole new one
    return TokenVocabulary.from_arrays(matrix, words)


def input_vocabulary(model: str) -> TokenVocabulary:
    """The encoder's *input* token embeddings (`word_embeddings` in its safetensors) as a word table.

    The design's original token space; kept to compare against (explanations from it name unrelated words).

    Raises:
        EncoderError: no vocabulary or word-embedding matrix in the model directory, or they disagree.
    """
    vocabulary = model_vocabulary(model)
    directory = Path(resolve_model_path(model))
    for weights in sorted(directory.rglob("*.safetensors")):
        with safe_open(str(weights), framework="numpy") as handle:
            keys = [key for key in handle.keys() if key.endswith(WORD_EMBEDDINGS_SUFFIX)]  # noqa: SIM118
            if keys:
                matrix = handle.get_tensor(keys[0])
                if matrix.shape[0] != len(vocabulary):
                    raise EncoderError(
                        f"{weights} holds {matrix.shape[0]} token embeddings but the vocabulary lists "
                        f"{len(vocabulary)} tokens"
                    )
                return TokenVocabulary.from_arrays(matrix, vocabulary)
    raise EncoderError(f"no {WORD_EMBEDDINGS_SUFFIX!r} tensor in the safetensors files of {directory}")
