"""``make demo``: every registered loss on its embedded example, losskit beside torch.

Run with ``python -m losskit.demo``.
"""

from __future__ import annotations

import torch

from ._registry import REGISTRY

__all__ = ["rows", "main"]


def rows() -> list[dict[str, object]]:
    """One row per (loss, example): losskit's value, torch's built-in, the printed one."""
    out = []
    for spec in REGISTRY.values():
        for example in spec.examples:
            tensors = example.tensors(torch.float32)
            options = example.call_options(torch.float32)
            value = float(spec.functional(*tensors, **options))
            builtin = spec.torch_builtin(*tensors, **options) if spec.torch_builtin else None
            out.append(
                {
                    "loss": spec.name,
                    "example": example.source,
                    "options": ", ".join(f"{k}={v}" for k, v in example.options.items()),
                    "losskit": value,
                    "torch": None if builtin is None else float(builtin),
                    "printed": example.printed_value,
                }
            )
    return out


def _table(data: list[dict[str, object]]) -> str:
    def cell(v: object) -> str:
        if v is None:
            return "-"
        return f"{v:.6f}" if isinstance(v, float) else str(v)

    headers = ["loss", "losskit", "torch", "printed", "example"]
    body = []
    for row in data:
        example = row["example"] + (f"; {row['options']}" if row["options"] else "")
        printed = "-" if row["printed"] is None else f"{row['printed']:g}"
        body.append([row["loss"], cell(row["losskit"]), cell(row["torch"]), printed, example])
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
    widths[-1] = len(headers[-1])  # the last column is not padded

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if 0 < i < 4 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, body)])


def main() -> None:
    print("losskit: every registered loss on its worked example (float32).")
    print(
        "torch = torch's built-in where torch has the loss; printed = the value printed "
        "where the example comes from\n(a published tutorial, or a losskit docstring).\n"
    )
    print(_table(rows()))


if __name__ == "__main__":
    main()
