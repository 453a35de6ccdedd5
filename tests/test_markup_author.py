"""pipeline.markup_author: trafilatura's markup author rules in Python give trafilatura's answers.

Every case is checked against the expected author *and* against ``trafilatura.metadata.extract_author``
on the same tree, so a trafilatura upgrade that changes its author rules fails here.
"""

from __future__ import annotations

import pytest
from lxml import etree
from trafilatura import load_html
from trafilatura.metadata import extract_author

from pipeline.markup_author import markup_author

FILLER = "<p>" + "The council met on Monday to agree the budget for the harbour works. " * 3 + "</p>"


def page(body: str, head: str = "") -> str:
    head = f"<head><title>Harbour works</title>{head}</head>"
    return f"<!DOCTYPE html><html>{head}<body>{FILLER}{body}</body></html>"


CASES = [
    # the specific rules: rel/id/class/itemprop/data-testid, an <author> element, a <rel>me</rel> child
    ("rel-author link", page('<a rel="author" href="/people/ines">Ines Okafor</a>'), "Ines Okafor"),
    ("author element", page("<author>Kwame Mensah</author>"), "Kwame Mensah"),
    ("id author", page('<div id="author">Maria Ruiz</div>'), "Maria Ruiz"),
    ("data-testid", page('<div data-testid="AuthorCard">Sven Aalto</div>'), "Sven Aalto"),
    ("author-name class", page('<span class="post-author-name">Olu Adeyemi</span>'), "Olu Adeyemi"),
    ("rel child", page("<p><rel>me</rel> Lotte Brink</p>"), "Me Lotte Brink"),
    # the generic rules, then the last resort
    ("byline class", page('<div class="byline">By Anna Berg</div>'), "Anna Berg"),
    ("itemprop on h3", page('<h3 itemprop="author">Juan Perez</h3>'), "Juan Perez"),
    ("pinyin id", page('<span id="zuozhe">Li Wei</span>'), "Li Wei"),
    ("writer on li", page('<ul><li class="story-writer">Noor Haddad</li></ul>'), "Noor Haddad"),
    ("capital Author class", page('<div class="Author">Hana Sato</div>'), "Hana Sato"),
    ("Byline component", page('<section data-component="ArticleByline">Tom Hale</section>'), "Tom Hale"),
    # rule order beats document order; within a rule the first element in the document wins
    (
        "specific before generic",
        page('<div class="byline">Gene Ricci</div><a rel="author">Pia Specht</a>'),
        "Pia Specht",
    ),
    (
        "generic before last resort",
        page('<li class="writer">Ann Yonder</li><span class="byline">Gus Nero</span>'),
        "Gus Nero",
    ),
    (
        "document order",
        page("<author>First Person</author><a rel='author'>Second Person</a>"),
        "First Person",
    ),
    # discarded containers: comments, figures, sidebars, Figure components, <time>
    (
        "comment author skipped",
        page(
            '<div class="comments"><span class="author">Carl Commenter</span></div>'
            '<li class="writer">Eva Stone</li>'
        ),
        "Eva Stone",
    ),
    (
        "figure credit skipped",
        page('<figure><span class="author">Pat Photo</span></figure><div class="byline">Rui Costa</div>'),
        "Rui Costa",
    ),
    ("sidebar skipped", page('<div class="right-sidebar"><a class="author">Sid Bar</a></div>'), None),
    (
        "Figure component skipped",
        page('<div data-component="Figure"><span class="author">Cap Tion</span></div>'),
        None,
    ),
    # a deleted <time> leaves the text after it, joined to the text before it
    (
        "time removed, tail kept",
        page('<span class="author">Bo <time>12 May</time>Lindqvist</span>'),
        "Bo Lindqvist",
    ),
    # text length bounds, and what normalize_authors refuses
    (
        "too short, next one",
        page('<span class="author">AB</span><div class="byline">Farah Nasser</div>'),
        "Farah Nasser",
    ),
    ("too long", page('<span class="author">' + "word " * 30 + "</span>"), None),
    ("an e-mail address", page('<span class="author">desk@paper.test</span>'), None),
    ("no byline", page("<p>No byline anywhere on this page.</p>"), None),
]


@pytest.mark.parametrize(("html", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_markup_author_matches_trafilatura(html: str, expected: str | None) -> None:
    tree = load_html(html)
    before = etree.tostring(tree)
    assert markup_author(tree) == expected
    assert extract_author(tree) == expected  # the rules this module transcribes
    assert etree.tostring(tree) == before  # the caller's tree is left alone
