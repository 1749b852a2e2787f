"""The ``losskit`` command line: ``list``, ``explain``, ``plot`` (typer + rich).

The benchmarks are not part of the installed package: ``python -m benchmarks`` runs them
from a checkout.

Installed by the ``cli`` extra; without it, ``losskit`` prints the pip command to run.
Every error (an unknown loss, a bad literal, a loss's own input error) is one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import difflib
import functools
import json
import sys
from pathlib import Path

import numpy as np

from ._errors import LossInputError, LossTypeError

try:  # the cli extra; without it `main` prints the pip command instead
    import typer
except ImportError:  # pragma: no cover - exercised by a subprocess test
    typer = None
from ._registry import REGISTRY, spec

__all__ = ["main", "parse_value", "parse_values", "load_array"]

_CLI_EXTRA = "losskit: the command line needs its extra: pip install 'losskit[cli]'"


class CLIError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""


_JSON_HINT = (
    "values are JSON: numbers (0.5), lists ([1, 2]), null, true/false, or a bare word "
    "for a name (reduction=sum)"
)


def parse_value(text: str, key: str | None = None) -> object:
    """A ``--set`` value: JSON (numbers, lists, null, true/false), else the raw string (a
    name such as ``sum``). Text that starts like JSON (``[``, ``{``, ``"``) must be JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        if text.lstrip()[:1] in ("[", "{", '"'):
            where = f"--set {key}={text}" if key else f"--set value {text!r}"
            raise CLIError(f"{where} is not valid JSON ({err.msg}); {_JSON_HINT}") from None
        return text


def parse_values(text: str, key: str | None = None) -> list[object]:
    """Comma-separated values for ``plot --set``: ``0,0.5,1`` or ``[2,1,2]`` (one list)."""
    try:
        return list(json.loads(f"[{text}]"))
    except json.JSONDecodeError:
        return [parse_value(part, key) for part in text.split(",")]


def load_array(text: str) -> np.ndarray:
    """A JSON literal, or a ``.npy``, ``.csv`` or ``.json`` file."""
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".npy", ".csv", ".json"):
        if not path.is_file():
            raise CLIError(f"no such file: {text}")
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".csv":
            try:
                array = np.loadtxt(path, delimiter=",", ndmin=1)
            except ValueError as err:
                first = path.read_text().splitlines()[:1]
                header = (
                    " (a header row? remove it)"
                    if first and any(c.isalpha() for c in first[0])
                    else ""
                )
                raise CLIError(
                    f"{text}: not a CSV of numbers{header}; losskit reads comma-separated "
                    f"numbers only, one row per line ({err})"
                ) from None
            return array.astype(np.int64) if np.all(array == np.round(array)) else array
        text = path.read_text()
    try:
        return np.asarray(json.loads(text))
    except (json.JSONDecodeError, ValueError) as err:
        raise CLIError(f"not a JSON array or a .npy/.csv/.json file: {text!r} ({err})") from None


def _options(pairs: list[str], parse, name: str | None = None) -> dict[str, object]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"--set takes key=value, got {pair!r}")
        out[key.strip()] = parse(value, key.strip())
    if name is not None:
        from .explain import explain_options

        valid = explain_options(name)  # exactly what explain takes, and lists
        for key in out:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise CLIError(f"{name} has no option {key!r}{hint}; it takes {', '.join(valid)}")
    return out


def _build_app():
    from rich.console import Console
    from rich.table import Table

    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        help="losskit: every common PyTorch loss, exact, explained and fast.",
    )

    def show_version(value: bool) -> None:
        if value:
            from . import __version__

            print(f"losskit {__version__}")
            raise typer.Exit()

    @app.callback()
    def options(
        version: bool = typer.Option(
            False,
            "--version",
            help="print the version and exit",
            callback=show_version,
            is_eager=True,
        ),
    ) -> None:
        """losskit: every common PyTorch loss, exact, explained and fast."""

    @app.command("list")
    @_friendly
    def list_losses() -> None:
        """Every registered loss: family, aliases, summary, when to use it."""
        table = Table(title="losskit losses")
        for column in ("name", "family", "aliases", "summary", "when to use it"):
            table.add_column(column, overflow="fold")
        for row in REGISTRY.values():
            table.add_row(
                row.name, row.family, ", ".join(row.aliases), row.summary, row.when_to_use
            )
        # a pipe or a file gets a wide table rather than rich's 80-column default
        Console(width=None if sys.stdout.isatty() else 150).print(table)

    @app.command("explain")
    @_friendly
    def explain_cmd(
        name: str = typer.Argument(..., help="a loss name or alias (see `losskit list`)"),
        input: str = typer.Option(None, "--input", help="JSON literal or .npy/.csv/.json"),
        target: str = typer.Option(None, "--target", help="JSON literal or .npy/.csv/.json"),
        set_: list[str] = typer.Option([], "--set", help="an option, key=value (JSON)"),
        as_json: bool = typer.Option(False, "--json", help="print JSON instead of text"),
    ) -> None:
        """Compute a loss by hand, step by step, and check it against torch."""
        from .explain import explain

        row = spec(name)
        options = _options(set_, parse_value, row.name)
        x = None if input is None else load_array(input)
        y = None if target is None else load_array(target)
        result = explain(row.name, x, y, **options)
        if as_json:
            print(json.dumps(result.to_dict(), indent=1))
        else:
            print(result)

    @app.command("plot")
    @_friendly
    def plot_cmd(
        names: list[str] = typer.Argument(..., help="one or more loss names"),
        set_: list[str] = typer.Option([], "--set", help="key=v1,v2,...: one curve per value"),
        grad: bool = typer.Option(False, "--grad", help="add the gradient panel"),
        out: Path = typer.Option(..., "--out", help="the PNG file to write"),
    ) -> None:
        """Draw loss (and gradient) curves: against the residual, or against p_t."""
        from .plot import plot

        path = plot([spec(n).name for n in names], _options(set_, parse_values), grad=grad, out=out)
        print(f"wrote {path}")

    return app


def _friendly(command):
    """Run a command; a user error becomes one line on stderr and exit status 2."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (LossInputError, LossTypeError, CLIError, ValueError, TypeError, OSError) as err:
            message = str(err).removeprefix("losskit: ")
            print(f"losskit: error: {message}", file=sys.stderr)
            raise SystemExit(2) from None

    return run


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``losskit`` command (usage errors also exit with status 2)."""
    try:
        import rich  # noqa: F401
    except ImportError:
        rich = None
    if typer is None or rich is None:
        print(_CLI_EXTRA, file=sys.stderr)
        raise SystemExit(2)
    _build_app()(args=argv, prog_name="losskit")
