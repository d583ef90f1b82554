"""mea-pipeline: the science library (no Prefect import anywhere below this package)."""

__version__ = "0.1.0"
