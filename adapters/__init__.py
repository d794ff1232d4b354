"""Adapters over frozen encoder embeddings (Cosine Adapter, IMRNN): torch modules with self-describing artifacts."""

from adapters.base import ARTIFACT_FORMAT, Adapter, EncoderSignature
from adapters.errors import AdapterArtifactError, AdapterError

__all__ = ["ARTIFACT_FORMAT", "Adapter", "AdapterArtifactError", "AdapterError", "EncoderSignature"]
