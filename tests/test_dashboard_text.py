"""Text from links, files and cards is shown literally by the panes that render markup (dashboard.text).

Each helper's output goes through the pane that shows it (Panel's Markdown renderer, the Str pane),
and the HTML a browser would receive is parsed: it must hold no element but the pane's own wrapper,
and its text must be exactly the input. Hypothesis generates the inputs.
"""

from __future__ import annotations

import dataclasses
import html
from html.parser import HTMLParser

import panel as pn
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.checkpoints import Checkpoint
from dashboard.text import excerpt, markdown_code, plain_html, plain_markdown

PAYLOADS = ['<img src=x onerror="window.__pwned=1">', "<script>alert(1)</script>", "[x](javascript:alert(1))",
            "![x](http://example.com/x.png)", "**bold** _it_ `code` ~~del~~ $x^2$ :smile: www.example.com",
            "# heading", "> quote", "| a | b |\n|---|---|\n| 1 | 2 |", "&lt;img&gt; &amp;", "a\\*b", "<!-- x -->",
            "1. one", "- [ ] task", "term\n: definition", "[^1]\n\n[^1]: note", "    indented", "a  \nb"]
#: Any text, weighted towards markup characters.
texts = st.one_of(st.text(), st.text(alphabet=st.sampled_from(list("<>&\"'`*_[]()!#|~$:\\-=+. \n\tax1/")), max_size=40),
                  st.sampled_from(PAYLOADS))


class _Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)

    def handle_startendtag(self, tag, attrs) -> None:
        self.tags.append(tag)

    def handle_data(self, data) -> None:
        self.text.append(data)

    def handle_comment(self, data) -> None:
        self.tags.append("!--")


def markdown_shows(text: str) -> str:
    """``text`` as CommonMark shows it: NUL characters replaced by U+FFFD (the rest as is)."""
    return text.replace("\x00", "\ufffd")


def shown(pane) -> tuple[list[str], str]:
    """(elements, text) of what the browser receives for ``pane`` (Panel sends it HTML-escaped once)."""
    received = html.unescape(pane._transform_object(pane.object)["object"])
    parsed = _Parsed()
    parsed.feed(received)
    parsed.close()
    return parsed.tags, "".join(parsed.text)


@settings(max_examples=400, deadline=None)
@given(text=texts)
def test_plain_markdown_renders_the_text_itself(text):
    tags, rendered = shown(pn.pane.Markdown(plain_markdown(text)))
    assert set(tags) <= {"p"}
    assert rendered.strip() == markdown_shows(" ".join(text.split()))


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_markdown_code_renders_the_text_itself(text):
    tags, rendered = shown(pn.pane.Markdown(f"data: {markdown_code(text)} end"))
    assert set(tags) <= {"p", "code"}
    one_line = " ".join(text.splitlines())
    assert rendered.strip() == markdown_shows(f"data: {one_line} end") or (not one_line.strip() and tags == ["p", "code"])


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_plain_html_in_a_str_pane_renders_the_text_itself(text):
    tags, rendered = shown(pn.pane.Str(plain_html(text)))
    assert tags == ["pre"]
    assert rendered == (text or " ")  # the pane shows an empty text as one space


@pytest.mark.parametrize("payload", PAYLOADS[:2])
def test_without_the_helpers_the_payload_is_markup(payload):
    """The panes do render raw HTML: what the helpers prevent is real."""
    assert "img" in shown(pn.pane.Markdown(payload))[0] or "script" in shown(pn.pane.Markdown(payload))[0]
    assert len(shown(pn.pane.Str(payload))[0]) > 1


def test_excerpt_is_one_short_line():
    assert excerpt("a\nb\r\nc\x85d") == "a b c d"
    assert excerpt("x" * 100, 10) == "x" * 9 + "…"


def test_a_model_card_is_described_as_plain_text(tmp_path):
    from models_testing import tiny_card

    payload = PAYLOADS[0]
    card = dataclasses.replace(tiny_card("ddpm", name="x"), description=f"{payload} **bold**",
                               validation={"<b>csi</b>": "<i>0.5</i>"})
    lines = Checkpoint(f"folder{payload}", tmp_path, card).describe()
    tags, text = shown(pn.pane.Markdown(lines))
    assert set(tags) <= {"p", "strong", "ul", "li"} and "img" not in tags
    assert f"folder{payload}" in text and f"{payload} **bold**" in text and "<b>csi</b> <i>0.5</i>" in text
