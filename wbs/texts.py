"""The texts an admin instansi writes for the tenant's pages, and the small markup they use.

Four texts: the landing introduction, guidance of the tenant's own (shown after the fixed
safety steps, which no admin can remove: anonymity is never a setting), the contact channels,
and "what happens next". Each is written in a Markdown subset: paragraphs, emphasis, lists,
headings (shown at level 3 or 4, under the page's own headings) and links. Nothing else:

- raw HTML is no part of the markup: it is removed from what is stored, and not rendered;
- links are kept only to v3 onion addresses. Any other link shows as its text alone: the
  reporter's page links nowhere on the clear web, where a click leaves Tor's protection or a
  referrer could name the drop box;
- the rendered HTML goes through bleach's allow-list as a second wall, so a parser surprise
  cannot bring a script, an image, a style or a frame through.

The markup is stored as typed (cleaned of HTML) and rendered whenever it is shown, so a
tightened allow-list applies to texts saved earlier. Each text is bounded in characters and in
rendered bytes so every tenant page keeps its byte budget.

Languages: Indonesian is the text every tenant writes; English is optional. An English page
shows the English text when there is one, else the Indonesian one (marked ``lang="id"``):
the tenant's own words (its contact channels, its procedure) are better than a default that
would contradict them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import bleach  # type: ignore[import-untyped]
from markdown_it import MarkdownIt
from markdown_it.token import Token

from wbs.context import Context
from wbs.domain import EventKind
from wbs.models import Event, TenantText, utcnow
from wbs.tenancy import TenantScope

TEXT_KEYS: tuple[str, ...] = ("intro", "guidance", "contact", "next_steps")
TEXT_LANGUAGES: tuple[str, ...] = ("id", "en")
DEFAULT_LANGUAGE = "id"
MAX_MARKUP_CHARS = 3000
# Three texts share the landing page; with the page itself they stay far below its 50 KB.
MAX_HTML_BYTES = 8 * 1024

ALLOWED_TAGS = frozenset({"p", "br", "em", "strong", "ul", "ol", "li", "h3", "h4", "a"})
ALLOWED_ATTRIBUTES = {"a": ["href"]}
_CODE_ELEMENTS = re.compile(
    r"<(script|style|iframe|noscript|template|object|textarea|title|svg|math)\b[^>]*>.*?"
    r"(?:</\1\s*>|$)",
    re.IGNORECASE | re.DOTALL,
)
_ONION_HOST = re.compile(r"(?:[a-z0-9-]+\.)*[a-z2-7]{56}\.onion")


class TextError(ValueError):
    """A text that cannot be saved; ``code`` says why (``too_long``, ``too_large``, ``key``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def is_onion_link(href: str | None) -> bool:
    """Whether ``href`` is an http(s) link to a v3 onion service (nothing else is kept)."""
    if not href:
        return False
    try:
        parts = urlsplit(href)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and bool(_ONION_HOST.fullmatch(host))


def _parser() -> MarkdownIt:
    # "zero" enables nothing; each rule of the subset is turned on by name. Raw HTML stays off.
    md = MarkdownIt("zero", {"html": False, "linkify": False, "typographer": False})
    md.enable(["heading", "emphasis", "list", "link", "image", "newline"])
    return md


_MD = _parser()


def _keep_tokens(tokens: list[Token]) -> None:
    """Headings moved under the page's own; links off the onion network unwrapped to text."""
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = "h3" if token.tag in ("h1", "h2", "h3") else "h4"
        if token.children:
            kept: list[Token] = []
            open_links: list[bool] = []
            for child in token.children:
                if child.type == "link_open":
                    good = is_onion_link(str(child.attrGet("href") or ""))
                    open_links.append(good)
                    if good:
                        child.attrs = {"href": str(child.attrGet("href"))}
                        kept.append(child)
                elif child.type == "link_close":
                    if open_links and open_links.pop():
                        kept.append(child)
                elif child.type != "image":
                    kept.append(child)
            token.children = kept


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    return tag == "a" and name == "href" and is_onion_link(value)


def render(markup: str) -> str:
    """The markup as safe HTML: the subset rendered, then bleach's allow-list."""
    tokens = _MD.parse(markup)
    _keep_tokens(tokens)
    rendered = _MD.renderer.render(tokens, _MD.options, {})
    return str(
        bleach.clean(
            rendered,
            tags=ALLOWED_TAGS,
            attributes=_allowed_attribute,
            protocols={"http", "https"},
            strip=True,
            strip_comments=True,
        )
    ).strip()


def clean_markup(markup: str) -> str:
    """The markup as it is stored: HTML tags taken out (they are no part of the markup),
    line ends unified, surrounding space trimmed."""
    text = markup.replace("\r\n", "\n").replace("\r", "\n")
    # Elements whose content is code, not text: gone with their content (bleach would keep
    # the text of a stripped <script> as words on the page).
    text = _CODE_ELEMENTS.sub("", text)
    # bleach escapes what it keeps; unescaping gives the typed characters back. Repeated until
    # nothing changes, so a tag hidden behind one layer of entities is taken out as well.
    for _ in range(5):
        stripped = html.unescape(str(bleach.clean(text, tags=set(), strip=True,
                                                  strip_comments=True)))
        if stripped == text:
            break
        text = stripped
    return text.strip()


def check_markup(markup: str) -> tuple[str, str]:
    """(stored markup, its HTML) for a text an admin sent, or TextError."""
    cleaned = clean_markup(markup)
    if len(cleaned) > MAX_MARKUP_CHARS:
        raise TextError("too_long")
    rendered = render(cleaned)
    if len(rendered.encode()) > MAX_HTML_BYTES:
        raise TextError("too_large")
    return cleaned, rendered


@dataclass(frozen=True)
class ShownText:
    """A tenant text ready for a page: safe HTML, and the language it is written in."""

    html: str
    language: str


def _rows(scope: TenantScope, key: str) -> dict[str, TenantText]:
    rows = scope.session.scalars(scope.select(TenantText).where(TenantText.key == key)).all()
    return {row.language: row for row in rows}


def tenant_text(scope: TenantScope, key: str, language: str) -> ShownText | None:
    """The tenant's text ``key`` for a page in ``language``; None: show the default text."""
    rows = _rows(scope, key)
    row = rows.get(language) or rows.get(DEFAULT_LANGUAGE)
    if row is None or not row.markup:
        return None
    return ShownText(render(row.markup), row.language)


def text_markups(scope: TenantScope) -> dict[tuple[str, str], str]:
    """Every stored markup of the tenant by (key, language), for the admin's form."""
    rows = scope.session.scalars(scope.select(TenantText)).all()
    return {(row.key, row.language): row.markup for row in rows}


def save_text(ctx: Context, key: str, language: str, markup: str) -> bool:
    """Store (or with an empty markup, remove) one text; True when something changed.

    The change is logged as a settings event naming the text and language, never its content.
    """
    if key not in TEXT_KEYS or language not in TEXT_LANGUAGES:
        raise TextError("key")
    cleaned, _html = check_markup(markup)
    row = _rows(ctx.scope, key).get(language)
    if (row.markup if row else "") == cleaned:
        return False
    if not cleaned:
        assert row is not None  # noqa: S101 -- equal texts returned above
        ctx.session.delete(row)
    elif row is None:
        ctx.scope.add(TenantText(key=key, language=language, markup=cleaned))
    else:
        row.markup = cleaned
        row.updated_at = utcnow()
    ctx.scope.add(
        Event(
            kind=EventKind.SETTINGS_CHANGED,
            actor_investigator_id=ctx.actor_id,
            note=f"teks {key} ({language})",
        )
    )
    ctx.session.commit()
    return True

