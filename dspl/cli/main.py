"""The `dspl` / `deepspectrumlite` command group: global options, version, and one-line user errors.

The global options (`-v`, `--threads`) are accepted before and after the command name; they are applied once
every flag is parsed, before the command runs (so before it loads torch).

Every way a command ends early is one `error: …` line: a user error (DsplError) and a file system that cannot
take or give a file (full, read-only, not permitted, a name too long: dspl.files.file_system_message) with exit
status 1, an interruption with the status shells report for its signal (130 for Ctrl-C, 143 for SIGTERM, which
dspl raises as an interruption so that a scheduler's `kill` ends as cleanly as Ctrl-C). `-vv` shows the traceback
instead.
"""

from __future__ import annotations

import ast
import functools
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import click

from dspl.cli.options import apply_settings, global_options, refuse_repeated_options, settings
from dspl.errors import DsplError, Interrupted, Terminated, interruption
from dspl.files import file_system_message
from dspl.version import __version__

# The commands in the order `--help` lists them; `plot` lives in the module dspl.cli.plot, `devel-test` in
# dspl.cli.devel_test. Each module loads only when its command runs, so `--help` stays fast and does not import
# torch or tensorflow: the listing reads each command's one-line help from its docstring in the source.
COMMANDS: tuple[str, ...] = (
    "example-data", "plot", "train", "search", "fit", "predict", "devel-test", "stats", "convert", "export",
    "tflite-stats", "benchmark", "create-preprocessor", "import-keras", "explain", "report",
)

SHORT_HELP_LIMIT = 200  # characters: long enough that no command's first sentence is cut


def command_module(name: str) -> str:
    """The module under dspl.cli that defines command ``name`` as ``command``."""
    return f"dspl.cli.{name.replace('-', '_')}"


def command_docstring(name: str) -> str:
    """The docstring of command ``name``'s function, read from its module's source without importing it."""
    from importlib.util import find_spec

    source = Path(find_spec(command_module(name)).origin).read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == "command":
            return ast.get_docstring(node) or ""
    raise LookupError(f"{command_module(name)} defines no function named 'command'")


def _with_global_options(command: click.Command) -> click.Command:
    """The command accepting the global options after its name too, applying them before it runs (once)."""
    if getattr(command, "_dspl_global_options", False):
        return command
    command.params.extend(global_options())
    callback: Callable[..., Any] = command.callback

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        apply_settings(click.get_current_context())
        return callback(*args, **kwargs)

    command.callback = run
    parse_args = command.parse_args

    def parse_once(ctx: click.Context, args: list[str]) -> list[str]:
        refuse_repeated_options(command, ctx, args)
        return parse_args(ctx, args)

    command.parse_args = parse_once
    command._dspl_global_options = True
    return command


class DsplGroup(click.Group):
    """A lazily loading click group that prints a DsplError as one line (traceback only with -vv)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        from importlib import import_module

        return _with_global_options(import_module(command_module(name)).command)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with the first sentence of its docstring, whole (wrapped, not cut at the width)."""
        rows = [(name, click.Command(name, help=command_docstring(name)).get_short_help_str(SHORT_HELP_LIMIT))
                for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        refuse_repeated_options(self, ctx, args)
        return super().parse_args(ctx, args)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's own usage errors end as one `error: …` line with exit status 1, as DsplErrors do."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as exc:
            context = getattr(exc, "ctx", None)
            hint = f" (see '{context.command_path} -h')" if isinstance(exc, click.UsageError) and context else ""
            click.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
            sys.exit(1)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)

    def invoke(self, ctx: click.Context):
        previous_hook = threading.excepthook
        threading.excepthook = functools.partial(_quiet_file_system_errors, ctx)
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated) if _in_main_thread() else None
        try:
            return super().invoke(ctx)
        except (DsplError, OSError, KeyboardInterrupt) as exc:
            message = _one_line(exc)
            if message is None or settings(ctx)["verbosity"] >= 2:
                raise
            click.echo(f"error: {message}", err=True)
            sys.exit(exc.status if isinstance(exc, Interrupted) else
                     interruption(exc)[1] if isinstance(exc, KeyboardInterrupt) else 1)
        finally:
            threading.excepthook = previous_hook
            if previous_sigterm is not None:
                signal.signal(signal.SIGTERM, previous_sigterm)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(_signum: int, _frame: Any) -> None:
    """SIGTERM as an interruption (dspl.errors.Terminated): the command cleans up and says what it kept, as on
    Ctrl-C, instead of dying where it stands."""
    raise Terminated


def _quiet_file_system_errors(ctx: click.Context, args: threading.ExceptHookArgs) -> None:
    """No traceback (unless -vv) for a background writer's file-system error (TensorBoard's event writer on a full
    disk): the writer raises it again in the command's thread when it is next used, and the command ends with one
    line."""
    quiet = settings(ctx)["verbosity"] < 2
    if quiet and isinstance(args.exc_value, OSError) and file_system_message(args.exc_value) is not None:
        return
    threading.__excepthook__(args)


def _one_line(exc: BaseException) -> str | None:
    """The error line of an exception a command may end with, or None for an OSError that is a bug."""
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted ({interruption(exc)[0]})"
    if isinstance(exc, OSError):
        return file_system_message(exc)
    return str(exc)


@click.group(cls=DsplGroup, params=global_options(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dspl")
def cli() -> None:
    """Train audio classifiers on spectrogram plots and export them to TensorFlow Lite.

    Compatible with DeepSpectrumLite's commands, flags and config files.
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="dspl" if not sys.argv[0].endswith("deepspectrumlite") else "deepspectrumlite")
