"""Generate the site's pages at build time (mkdocs-gen-files runs this on every build).

One page per row of ``losskit.REGISTRY`` (docstring math, arguments, shapes, the
walk-through that ``losskit.explain`` prints, the figure of ``losskit.plot.plot``), the
loss index, the guides that run code (errors, migration, choosing, accumulation,
kernels, benchmarks), the navigation, and the vendored MathJax. Nothing here is pasted:
every number and message on these pages is computed while the site builds, and a claim
that no longer holds fails the build.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).parent))

import guides  # noqa: E402
import readme  # noqa: E402
import rst  # noqa: E402

import losskit  # noqa: E402
import losskit.plot  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def rows() -> list:
    """The registry's rows, whether it is a mapping of names or a sequence of rows."""
    reg = losskit.REGISTRY
    return list(reg.values()) if isinstance(reg, Mapping) else list(reg)


ROWS = rows()
NAMES = {r.name for r in ROWS}


def page_link(name: str, here: str = "losses") -> str | None:
    """Relative link from a page under ``here`` to a loss's page, or None."""
    if name not in NAMES:
        return None
    return f"{name}.md" if here == "losses" else f"losses/{name}.md"


def public_function(row):
    return inspect.unwrap(row.functional)


def write(path: str, text: str) -> None:
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(text.rstrip() + "\n")


def fence(text: str, lang: str = "text") -> str:
    ticks = "````" if "```" in text else "```"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ----------------------------------------------------------------------------- loss pages
def arguments_table(row, doc: rst.Docstring) -> str:
    fn = public_function(row)
    sig = inspect.signature(fn)
    described = {}
    for names, desc in rst.entries(doc.sections.get("Args", doc.sections.get("Arguments", ""))):
        for n in names.split(","):
            described[n.strip()] = desc
    lines = ["| argument | kind | default | description |", "|---|---|---|---|"]
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD or p.kind is p.VAR_POSITIONAL:
            continue
        kind = "keyword-only" if p.kind is p.KEYWORD_ONLY else "positional"
        default = "required" if p.default is p.empty else f"`{p.default!r}`"
        desc = described.get(p.name) or described.get("others", "")
        lines.append(
            f"| `{p.name}` | {kind} | {md_cell(default)} | {md_cell(rst.inline(desc, page_link))} |"
        )
    return "\n".join(lines)


def semantics_bullets(name: str, family: str, bullets: list[str]) -> list[str]:
    """The README's semantics bullets that name this loss: in code (`name`, `name(`), in
    words (cross_entropy: "cross entropy", rmse_loss: "RMSE") or by family ("regression
    losses")."""
    words = re.escape(name.removesuffix("_loss").replace("_", " "))
    said = re.compile(rf"(?<![\w-])({words}|{re.escape(family)} losses)(?![\w-])", re.I)
    return [b for b in bullets if f"`{name}`" in b or f"`{name}(" in b or said.search(b)]


def signature_without_self(obj) -> inspect.Signature:
    sig = inspect.signature(obj)
    params = list(sig.parameters.values())
    if params and params[0].name == "self":
        sig = sig.replace(parameters=params[1:])
    return sig


def comparison_table(row) -> tuple[str, str]:
    """Every worked example through ``losskit.explain``: by hand, losskit, torch."""
    lines = [
        "| example | options | by hand (float64) | losskit | torch built-in |",
        "|---|---|---:|---:|---:|",
    ]
    first = None
    for i, ex in enumerate(row.examples):
        if i == 0:
            e = losskit.explain(row.name)
            first = e
        elif ex.extra:  # extra inputs: only the embedded first example is explained
            continue
        else:
            e = losskit.explain(row.name, ex.input, ex.target, **dict(ex.options))
        c = dict(getattr(e, "check", None) or {})
        torch_value = "none" if c.get("torch") is None else _num(c["torch"])
        ours = "not checked" if c.get("losskit") is None else _num(c["losskit"])
        options = ", ".join(f"{k}={v!r}" for k, v in dict(ex.options).items()) or "defaults"
        lines.append(
            f"| {md_cell(ex.source)} | {md_cell(options)} | {_num(e.result)} | "
            f"{ours} | {torch_value} |"
        )
        if abs(c.get("losskit_abs_diff") or 0.0) > 1e-5:
            raise RuntimeError(f"{row.name}: losskit disagrees with its reference on {ex.source}")
    return "\n".join(lines), str(first)


def _num(v) -> str:
    if isinstance(v, (int, float)):
        return f"{v:.6g}"
    return md_cell(json.dumps(v if not hasattr(v, "tolist") else v.tolist()))[:80]


def figure(row) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{row.name}.png"
        losskit.plot.plot([row.name], grad=True, out=out)
        with mkdocs_gen_files.open(f"losses/{row.name}.png", "wb") as f:
            f.write(out.read_bytes())


def loss_page(row, bullets: list[str]) -> str:
    fn = public_function(row)
    doc = rst.split(fn.__doc__)
    module = row.module
    in_nn = getattr(losskit.nn, module.__name__, None) is module
    mod_name = (
        f"losskit.nn.{module.__name__}" if in_nn else f"{module.__module__}.{module.__name__}"
    )
    head = [
        f"# `{row.name}`",
        "",
        f"*{row.family}* · function `losskit.functional.{row.name}` · module `{mod_name}`"
        + (" · aliases " + ", ".join(f"`{a}`" for a in row.aliases) if row.aliases else "")
        + (f" · [paper]({row.paper})" if row.paper else ""),
        "",
        f"**What it computes:** {md_cell(row.summary)}.",
        "",
        f"**When to use it:** {md_cell(row.when_to_use)}.",
        "",
        "## The math",
        "",
        rst.inline(doc.summary, page_link),
        "",
        rst.markdown(doc.description, page_link) if doc.description else "",
        "",
        "## Arguments",
        "",
        fence(f"losskit.functional.{row.name}{inspect.signature(fn)}", "python"),
        "",
        arguments_table(row, doc),
        "",
    ]
    if "Shape" in doc.sections:
        head += ["## Shape", "", rst.markdown(doc.sections["Shape"], page_link), ""]
    if "Returns" in doc.sections:
        head += ["## Returns", "", rst.markdown(doc.sections["Returns"], page_link), ""]
    head += [
        "## Module form",
        "",
        fence(
            f"{mod_name}{signature_without_self(module)}\n"
            f'losskit.get("{row.name}", **options)  # the same module, by name',
            "python",
        ),
        "",
    ]
    mine = semantics_bullets(row.name, row.family, bullets)
    head += ["## Semantics, and where it differs from torch", ""]
    if mine:
        head += ["From the [semantics shared by every loss](../guides/semantics.md):", ""]
        head += [f"- {b}" for b in mine] + [""]
    head += [
        "The rules every loss follows (weighted means, `normalizer=`, the empty mean, "
        "precision, checks) are on the [semantics page](../guides/semantics.md). "
        "Each worked example below, computed now by `losskit.explain`: the by-hand "
        "float64 steps, losskit's torch implementation, and torch's own built-in "
        "where torch has the loss:",
        "",
    ]
    table, walk = comparison_table(row)
    axis = row.target_kind.plot_grid()[1]
    axis_md = axis.replace("p_t", "$p_t$")  # the plot's label, its symbol typeset
    head += [table, ""]
    head += [
        "## By hand",
        "",
        f'`losskit.explain("{row.name}")` on its first worked example '
        f"(`losskit explain {row.name}` prints the same):",
        "",
        fence(walk),
        "",
        "## Loss and gradient",
        "",
        f'`losskit.plot.plot(["{row.name}"], grad=True, out=...)` (x axis: {axis_md}):',
        "",
        f"![{row.name}: loss and gradient against {axis}]({row.name}.png)",
        "",
    ]
    if "Example" in doc.sections or "Examples" in doc.sections:
        ex = doc.sections.get("Example") or doc.sections["Examples"]
        head += ["## Example", "", "From the docstring (run by the doctests):", ""]
        head += [rst.doctest_block(ex), ""]
    if "References" in doc.sections:
        head += ["## References", "", rst.markdown(doc.sections["References"], page_link), ""]
    return "\n".join(head)


def loss_index() -> str:
    lines = [
        "# Losses",
        "",
        f"Every loss of `losskit.REGISTRY` ({len(ROWS)} rows when this site was built); each "
        "page is generated from the row and its function's docstring when the site builds.",
        "",
        "| loss | family | what it computes | when to use it |",
        "|---|---|---|---|",
    ]
    for r in ROWS:
        alias = f" (alias {', '.join(f'`{a}`' for a in r.aliases)})" if r.aliases else ""
        lines.append(
            f"| [`{r.name}`]({r.name}.md){alias} | {r.family} | {md_cell(r.summary)} | "
            f"{md_cell(r.when_to_use)} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def main() -> None:
    t0 = time.perf_counter()
    sections = readme.sections(ROOT / "README.md")
    bullets = readme.bullets(readme.find(sections, "Semantics"))

    families: dict[str, list[str]] = {}
    for row in ROWS:
        write(f"losses/{row.name}.md", loss_page(row, bullets))
        figure(row)
        families.setdefault(row.family, []).append(row.name)
    write("losses/index.md", loss_index())

    guide_pages = guides.build(write, ROWS, sections, ROOT)

    nav = ["* [Home](index.md)", "* Guides"]
    nav += [f"    * [{title}]({path})" for title, path in guide_pages]
    nav += ["* [Losses](losses/index.md)"]
    for family, names in families.items():
        nav.append(f"    * {family}")
        nav += [f"        * [{n}](losses/{n}.md)" for n in names]
    nav += ["* [API reference](reference.md)"]
    write("SUMMARY.md", "\n".join(nav))

    mathjax = Path(
        os.environ.get("LOSSKIT_MATHJAX", ROOT / "build/vendor/mathjax-3.2.2/tex-svg-full.js")
    )
    if not mathjax.is_file():
        raise FileNotFoundError(f"{mathjax} is missing: `make docs` fetches MathJax from npm")
    with mkdocs_gen_files.open("assets/mathjax/tex-svg-full.js", "wb") as f:
        f.write(mathjax.read_bytes())
    licence = mathjax.with_name("LICENSE")
    if licence.is_file():
        with mkdocs_gen_files.open("assets/mathjax/LICENSE", "wb") as f:
            f.write(licence.read_bytes())
    print(f"gen_pages: {len(ROWS)} loss pages in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


main()
