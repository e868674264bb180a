"""The catalog: an app of its own, included under ``/catalog/``."""
