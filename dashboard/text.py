"""Text from links, files and model cards, made inert before it reaches a pane that renders markup.

Panel's ``Markdown`` and ``Alert`` panes render Markdown *and* raw HTML, its ``Str`` pane wraps its
text in ``<pre>`` without escaping it, and Bokeh's ``MultiChoice`` shows its labels as HTML. Any text
that a link, a file or a model card can set (query values, checkpoint folder names, card fields,
error messages quoting a file, data paths) therefore goes through one of these functions first:

- :func:`plain_html` for ``Str`` panes and widget labels: HTML special characters as entities;
- :func:`plain_markdown` for ``Markdown``/``Alert`` panes: the same, and every other ASCII punctuation
  character backslash-escaped, so that no Markdown syntax (emphasis, links, images, math, tables,
  headings) applies either;
- :func:`markdown_code` for a code span (paths, keys) in a ``Markdown`` pane.

Each shows exactly the characters it was given (whitespace runs become one space in Markdown).
"""

from __future__ import annotations

import html
import re
import string

#: ASCII punctuation that Markdown may read as syntax and that a backslash makes literal (CommonMark
#: allows a backslash before any ASCII punctuation); ``& < > " '`` become HTML entities instead.
_MARKDOWN_ESCAPES = {ord(c): "\\" + c for c in string.punctuation if c not in "&<>\"'"}


def plain_html(text: object) -> str:
    """``text`` (any object, as ``str``) with ``& < > " '`` as HTML entities: shown, never parsed.

    >>> plain_html('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    return html.escape(str(text), quote=True)


def plain_markdown(text: object) -> str:
    """``text`` as Markdown that renders exactly that text: no HTML, no Markdown syntax, one line.

    Line breaks and runs of whitespace become one space (a message is one line; an indented line
    would otherwise become a code block).

    >>> plain_markdown("**a** <b>")
    '\\\\*\\\\*a\\\\*\\\\* &lt;b&gt;'
    """
    one_line = " ".join(str(text).split())
    return plain_html(one_line.translate(_MARKDOWN_ESCAPES))


def markdown_code(text: object) -> str:
    """``text`` as a Markdown code span, shown literally (HTML is not parsed inside a code span).

    The span is fenced with one backtick more than the longest run of backticks in the text, so the
    text cannot close it, and padded with a space at each end (which the renderer removes) when the
    text begins or ends with a backtick or a space; line breaks become spaces.

    >>> markdown_code("a`b")
    '``a`b``'
    """
    one_line = " ".join(str(text).splitlines()) or " "
    fence = "`" * (max((len(run) for run in re.findall("`+", one_line)), default=0) + 1)
    pad = " " if one_line[0] in "` " or one_line[-1] in "` " else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def excerpt(text: object, limit: int = 80) -> str:
    """``text`` on one line (whitespace runs as one space), cut to ``limit`` characters with ``…``.

    For quoting a value a user gave (a link parameter, a file's content) in a one-line message.

    >>> excerpt("a\\n  b" + "c" * 100, limit=8)
    'a bcccc…'
    """
    one_line = " ".join(str(text).split())
    return one_line if len(one_line) <= limit else one_line[:limit - 1] + "…"
