"""Developer tools that ship with newswire but are not pipeline stages.

- :mod:`pipeline.devtools.esserver`: a local Elasticsearch without Docker (``newswire es``, the
  test harness), with the analysis plugin it compiles from ``esplugin/``.
"""
