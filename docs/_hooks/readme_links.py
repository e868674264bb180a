"""MkDocs hook: README sections included in a page link to README headings (``#users-in-control``);
on the site those sections are pages of their own, so such links are pointed at the page.

The included text exists only once the snippets extension has run, so the rewriting is a
Markdown preprocessor placed after it, not a page hook.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

#: README heading anchors that are a page of their own on the site.
SECTION_PAGES = {"users-in-control": "users-in-control.md"}

_LINK = re.compile(r"\]\(#(" + "|".join(map(re.escape, SECTION_PAGES)) + r")\)")
#: pymdownx.snippets runs at priority 32; this must see its output.
_AFTER_SNIPPETS = 31

_page_source = ""


def _rewrite(line: str) -> str:
    here = posixpath.dirname(_page_source) or "."

    def to_page(match: re.Match[str]) -> str:
        target = SECTION_PAGES[match.group(1)]
        if target == _page_source:
            return match.group(0)
        return f"]({posixpath.relpath(target, here)})"

    return _LINK.sub(to_page, line)


class _ReadmeLinks(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        return [_rewrite(line) for line in lines]


class _ReadmeLinksExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(_ReadmeLinks(md), "td_web_readme_links", _AFTER_SNIPPETS)


def on_config(config: Any, **kwargs: Any) -> Any:
    config.markdown_extensions.append(_ReadmeLinksExtension())
    return config


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    global _page_source
    _page_source = page.file.src_uri
    return markdown
