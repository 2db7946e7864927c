"""Destination backends, one per module. A custom backend subclasses ``base.BaseBackend``."""
