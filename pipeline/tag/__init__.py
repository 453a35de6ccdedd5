"""Entity tagging: actors and locations with canonical ids, aliases and coordinates.

Public API (other modules import exactly this): :class:`Tagger`, :func:`get_tagger` (tagging) and
:func:`get_resolver` (names to ids for search: a :class:`~pipeline.tag.resolver.Resolver` over a compact
lookup file, without spaCy or the full gazetteer; :mod:`pipeline.tag.resolver`). See
:mod:`pipeline.tag.tagger` for the contract, :mod:`pipeline.tag.gazetteer` for the data sources and
:mod:`pipeline.tag.normalize` for the matching normal form.
"""

from pipeline.tag.article import Mention
from pipeline.tag.tagger import Tagger, get_resolver, get_tagger

__all__ = ["Mention", "Tagger", "get_resolver", "get_tagger"]
