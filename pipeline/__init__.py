"""newswire: news ingestion from RSS/Atom feeds into a searchable index.

Stages (each a generator over record dicts, see docs/architecture.md):
fetch -> parse -> clean -> dedupe -> tag -> index (stores) -> search.
"""

__version__ = "0.1.0"
