"""The `scaling` command. Thin: it parses arguments and calls into the library.

Each subcommand lives in its own module under `scaling.cli` and exposes
`register(subparsers)`, which adds its parser and sets `func` to the function that runs it.
Modules are imported lazily-enough (only argparse at import time) so `scaling --help` is fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path

from scaling.errors import RunFailed, UserError

# Order is the order shown by `scaling --help`.
COMMAND_MODULES = ["demo", "data", "train", "rl", "eval", "sweep", "fit", "plot", "compare", "flops"]


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints usage + error over several lines; the CLI contract is one line, exit 2."""

    def error(self, message):  # noqa: D102
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scaling")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="scaling",
        description="A JAX scaling-law lab: train sweeps of dense/MoE decoders (pretraining and RLVR), "
        "fit scaling laws, and plot them.",
    )
    parser.add_argument("--version", action="version", version=f"scaling {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineArgumentParser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"scaling.cli.{name}").register(subparsers)
    return parser


_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_library_format = warnings.formatwarning


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """The lab's own warnings read as the CLI's other messages ("warning: ..."), without the Python
    source line a UserWarning prints by default; other libraries' warnings keep their usual form."""
    if str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        return f"warning: {message}\n"
    return _library_format(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except UserError as e:
        print(f"scaling {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:
        print(f"scaling {args.command}: run failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"scaling {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
