"""README.md, read by section, so the site and the README say one thing from one source."""

from __future__ import annotations

import re
from pathlib import Path


def sections(path: Path) -> dict[str, str]:
    """``{heading: body}`` for each ``##`` or ``###`` heading (fenced code is not a heading)."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_fence = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else re.match(r"^(#{2,3}) (.+)$", line)
        if m:
            current = out.setdefault(m.group(2).strip(), [])
            continue
        if current is not None:
            current.append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def find(secs: dict[str, str], start: str) -> str:
    """The body of the section whose heading starts with ``start``; a missing one fails."""
    for heading, body in secs.items():
        if heading.startswith(start):
            return body
    raise KeyError(
        f"README.md has no section starting {start!r} (headings: {list(secs)}); "
        "the site reads it: update docs/_scripts to the README's new headings"
    )


def bullets(body: str) -> list[str]:
    """The top-level ``- `` bullets of a section, each joined onto one line."""
    out: list[str] = []
    for line in body.splitlines():
        if line.startswith("- "):
            out.append(line[2:].strip())
        elif out and line.startswith("  ") and line.strip():
            out[-1] += " " + line.strip()
        elif not line.strip() and out:
            out.append("")
    return [b for b in out if b]


def for_site(body: str) -> str:
    """A README section as a page's Markdown: links into docs/ made relative to guides/,
    and the doctest blocks shown as Python sessions."""
    body = body.replace("](docs/", "](../")
    return re.sub(r"^```python$", "```pycon", body, flags=re.M)
