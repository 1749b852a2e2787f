"""Turn losskit's docstrings (Google sections, reST inline markup, ``.. math::`` blocks) into
Markdown for the site: display math for pymdownx.arithmatex, inline LaTeX in double
backticks as inline math, reST roles as code (a link where the target is a loss page).

Used by the page generator (``gen_pages.py``) and, through :class:`RstMath`, by
mkdocstrings for the API reference.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

SECTION = re.compile(
    r"^(Args|Arguments|Attributes|Shape|Returns|Raises|Example|Examples|References|Notes?):\s*$"
)
ROLE = re.compile(r":(?:py:)?(func|mod|class|meth|attr|data|obj|exc):`~?([^`]+)`")
# A LaTeX command (\sum, \log, ...) marks a double-backtick span as math, not code.
LATEX = re.compile(r"\\[A-Za-z]+")
CODE = re.compile(r"``((?:(?!\n\s*\n)[^`])+?)``")  # may wrap lines, not paragraphs


@dataclass
class Docstring:
    """A docstring split into its summary, its description and its named sections."""

    summary: str
    description: str
    sections: dict[str, str] = field(default_factory=dict)


def split(doc: str | None) -> Docstring:
    """Split a Google-style docstring into summary, description and sections (raw text)."""
    text = inspect.cleandoc(doc or "")
    lines = text.splitlines()
    summary = lines[0].strip() if lines else ""
    body: list[str] = []
    sections: dict[str, list[str]] = {}
    current = body
    for line in lines[1:]:
        m = SECTION.match(line)
        if m:
            current = sections.setdefault(m.group(1), [])
            continue
        current.append(line)
    return Docstring(
        summary=summary,
        description="\n".join(body).strip("\n"),
        sections={k: "\n".join(v).strip("\n") for k, v in sections.items()},
    )


def _math_blocks(text: str) -> str:
    """``.. math::`` and its indented block become an arithmatex ``$$`` block."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)\.\. math::\s*(.*)$", line)
        if not m:
            out.append(line)
            i += 1
            continue
        indent = len(m.group(1))
        block = [m.group(2)] if m.group(2) else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
            block.append(lines[i])
            i += 1
        body = inspect.cleandoc("\n".join(block))
        out += ["", "$$", body, "$$", ""]
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def inline(text: str, link: Callable[[str], str | None] = lambda name: None) -> str:
    """Inline markup: roles to code (or a link), LaTeX in ``...`` to ``$...$``."""

    def role(m: re.Match) -> str:
        target = m.group(2)
        shown = target.rsplit(".", 1)[-1] if m.group(0).count("~") else target
        href = link(target.rsplit(".", 1)[-1])
        return f"[`{shown}`]({href})" if href else f"`{shown}`"

    def code(m: re.Match) -> str:
        inner = " ".join(m.group(1).split())
        if LATEX.search(inner):
            return f"${inner}$"
        return f"`{inner}`" if "`" not in inner else f"`` {inner} ``"

    text = CODE.sub(code, text)
    return ROLE.sub(role, text)


def markdown(text: str, link: Callable[[str], str | None] = lambda name: None) -> str:
    """A block of docstring prose (with math) as Markdown."""
    text = _math_blocks(text)
    parts = re.split(r"(\n\$\$\n.*?\n\$\$\n)", text, flags=re.S)
    # Math is left as it is; everything else gets its inline markup converted.
    return "".join(p if p.startswith("\n$$\n") else inline(p, link) for p in parts).strip()


def entries(section: str) -> list[tuple[str, str]]:
    """``name: description`` entries of an Args-like section, continuation lines joined."""
    out: list[tuple[str, str]] = []
    for line in inspect.cleandoc(section).splitlines():
        m = re.match(r"^([A-Za-z_*][\w*, ]*):\s*(.*)$", line)
        if m and not line.startswith(" "):
            out.append((m.group(1).strip(), m.group(2).strip()))
        elif out:
            name, desc = out[-1]
            out[-1] = (name, f"{desc} {line.strip()}".strip())
    return out


def doctest_block(section: str) -> str:
    """An Example section as a ``pycon`` code block."""
    return "```pycon\n" + inspect.cleandoc(section) + "\n```"


def for_griffe(doc: str) -> str:
    """What griffe's Google parser reads well: roles as code, ``.. math::`` as ``$$``,
    ``Example:`` as ``Examples:`` (parsed as doctest), and ``a, b: text`` as two entries."""
    doc = ROLE.sub(lambda m: f"`{m.group(2).lstrip('~')}`", doc)
    doc = re.sub(r"^(\s*)Example:\s*$", r"\1Examples:", doc, flags=re.M)
    doc = re.sub(  # "a, b: text" (with continuation lines) -> "a: as `b`." + "b: text"
        r"^(\s+)(\w+), (\w+): (.*)$",
        lambda m: f"{m[1]}{m[2]}: as `{m[3]}`.\n{m[1]}{m[3]}: {m[4]}",
        doc,
        flags=re.M,
    )
    return _math_blocks(doc)


try:  # the mkdocstrings side: a griffe extension that converts docstrings before rendering
    import griffe

    class RstMath(griffe.Extension):
        """Convert ``.. math::`` blocks and reST roles in every docstring griffe loads."""

        def on_instance(self, *, obj, **kwargs) -> None:  # noqa: ANN001
            if obj.docstring is not None:
                obj.docstring.value = for_griffe(obj.docstring.value)


except ImportError:  # pragma: no cover - the docs extra installs griffe
    pass
