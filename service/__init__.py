"""Glassbox service: settings, encoder, collections, the search pipeline, REST API and CLI."""

__version__ = "0.1.0"
