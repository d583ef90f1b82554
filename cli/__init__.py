"""The ``mea-pipeline`` command line (imports flows and deployments; nothing imports it)."""
