"""Text from Graph or from users, made harmless before it enters an alert payload.

A service principal's display name, a job or template id, a quarantine reason, or a provisioning
target's error message is written by whoever controls that app or that SCIM endpoint. In a Teams
card or a Slack message it must not become a link, a mention or formatting that dresses a lure
up as the monitor's own words. `payloads.py` sends every such text through one function here;
the one link an alert carries (the troubleshooting button) is checked by `portal_link` and stays
clickable.

- `neutral`, for every medium: one line (control, line-break, bidi and zero-width characters
  go), URLs defanged the way threat reports write them (`https[:]//evil[.]com`, `www[.]x[.]com`,
  `user@evil[.]com`), broadcast mentions broken (`[@]here`), clipped with an ellipsis.
- `slack_text`: `neutral`, then `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`, which Slack's
  "Formatting text for app surfaces" (docs.slack.dev/messaging/formatting-message-text,
  "Escaping text") requires in text objects: `<!channel>`, `<@U…>` and `<url|text>` are inert.
  Payloads put it in `plain_text` objects, which apply no mrkdwn (Block Kit "Text object",
  docs.slack.dev/reference/block-kit/composition-objects/text-object).
- `prose_text`, for a medium we do not know (the generic webhook's headline and summary):
  `neutral`, then `<`/`>` as the look-alikes `‹`/`›`, so no tag or `<…>` sequence survives.
- `teams_text`: `prose_text` (Adaptive Cards take no HTML and no entities,
  learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-format, so
  `<at>` can only be broken, not escaped) with `{{` split (no DATE()/TIME() functions).
  Payloads put it in RichTextBlock TextRuns, which apply no Markdown ("Text features",
  learn.microsoft.com/adaptive-cards/create/textfeatures): backslash escapes in a TextBlock
  or Fact render differently per Teams client (microsoft/AdaptiveCards #4677, #5590).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

ELLIPSIS = "…"

# C0/C1 controls and Unicode line/paragraph separators: a hostile "\n" must not start a line
# that reads as the monitor's own.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Bidi overrides and isolates (they reorder what is read), zero-width and soft-hyphen characters
# (they hide what was defanged, or split a word to dodge the rules below).
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"\s+")
# `https://x`, `ms-settings://`, and `https:/x` or `https:\\x`, which browsers repair: a scheme
# before a slash or backslash.
_SCHEME = re.compile(r"(?i)(?<![\w+.\-])([a-z][a-z0-9+.\-]{0,31}):(?=[/\\])")
# Schemes that open something without `//`, when something follows.
_BARE_SCHEME = re.compile(
    r"(?i)(?<![\w+.\-])(mailto|javascript|vbscript|data|tel|sms|callto|file|msteams|slack):(?=\S)"
)
_HOST_AFTER_SCHEME = re.compile(r"(\[:\][/\\]+)([^\s/?#\\]+)")
_DOMAIN = re.compile(r"(?i)(?<![\w.\-])(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+([a-z]{2,24})(?![\w\-])")
# Top-level domains Slack and Teams turn into links when written bare; a name like
# `System.IO.Exception` or `scim.0a1b.alerts` is left readable.
_LINKED_TLDS = frozenset(
    "com net org edu gov mil int info biz io co ai app dev me ly ms us uk de fr nl ru cn jp in br au ca eu "
    "xyz top site online link click zip mov shop store live tech cloud page sh to gg tk ml ga cf gq cc tv ws".split()
)
_MENTION = re.compile(r"(?i)(?<![\w.\-])@(here|channel|everyone|all|group|team|someone)\b")
_ANGLES = str.maketrans({"<": "‹", ">": "›"})
_SLACK_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")

# Hosts the troubleshooting button may open: Microsoft's portals in the public and national clouds.
_PORTAL_DOMAINS = (
    "azure.com",
    "microsoft.com",
    "microsoftonline.com",
    "azure.us",
    "azure.cn",
    "microsoftazure.de",
    "aka.ms",
)


def _defang_domain(match: re.Match[str]) -> str:
    host = match.group(0)
    followed_by_path = match.string[match.end() : match.end() + 1] == "/"
    if match.group(1).lower() in _LINKED_TLDS or host.lower().startswith("www.") or followed_by_path:
        return host.replace(".", "[.]")
    return host


def defang(text: str) -> str:
    """URLs, bare domains, e-mail domains and broadcast mentions as inert text."""
    text = _SCHEME.sub(r"\1[:]", text)
    text = _BARE_SCHEME.sub(r"\1[:]", text)
    text = _HOST_AFTER_SCHEME.sub(lambda m: m.group(1) + m.group(2).replace(".", "[.]"), text)
    text = _DOMAIN.sub(_defang_domain, text)
    return _MENTION.sub(r"[@]\1", text)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def neutral(value: object, limit: int) -> str:
    """Graph's or a user's text as one inert line of at most `limit` characters, for any medium."""
    # Bounded first: the patterns below never see more than a few times what can be shown.
    text = _INVISIBLE.sub("", str(value)[: limit * 4 + 64])
    text = _SPACES.sub(" ", _BREAKS.sub(" ", text)).strip()
    return clip(defang(text), limit)


def slack_text(value: object, limit: int) -> str:
    """For a Slack text object (plain_text, or the message's `text`): neutral, then escaped."""
    escaped = neutral(value, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(escaped) <= limit:
        return escaped
    # Slack counts the escaped characters: clip again, never through an entity.
    return _SLACK_ENTITY_TAIL.sub("", escaped[: limit - 1]).rstrip() + ELLIPSIS


def prose_text(value: object, limit: int) -> str:
    """For a line a receiver shows in a medium we do not know: neutral, and `<`/`>` as
    look-alikes, so no HTML tag, `<!channel>` or `<at>` survives in any of them."""
    return neutral(value, limit).translate(_ANGLES)


def teams_text(value: object, limit: int) -> str:
    """For an Adaptive Card TextRun: prose, and no template function."""
    return prose_text(value, limit).replace("{{", "{ {")


def portal_link(url: object) -> str | None:
    """Graph's troubleshootingUrl when it is an https address of a Microsoft portal (the only
    link an alert offers); None otherwise, and the button is left out."""
    if not isinstance(url, str) or not url.startswith("https://") or _INVISIBLE.search(url) or _BREAKS.search(url):
        return None
    if any(char.isspace() for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None or port not in (None, 443):
        return None
    return url if any(host == domain or host.endswith("." + domain) for domain in _PORTAL_DOMAINS) else None
