"""The REST layer: routes speak HTTP and call the pipeline; nothing else lives here."""

from service.api.app import create_app

__all__ = ["create_app"]
