"""Click options that several commands share, each defined once.

Input paths are checked here, while the flags are parsed, so that a typo is reported before a command loads
torch or TensorFlow (seconds); the library checks them again for callers from Python.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
from pathlib import Path
from typing import Any, Callable

import click

from dspl import threads
from dspl.errors import DsplError
from dspl.files import regular_file, replaceable
from dspl.quiet import set_verbosity

log = logging.getLogger(__name__)
MODEL_SUFFIXES = (".h5", ".hdf5", ".ckpt")
DEFAULT_MODEL_FILE = "model.h5"


def settings(ctx: click.Context) -> dict[str, Any]:
    """The global settings of this invocation (kept on the root context)."""
    root = ctx.find_root()
    root.ensure_object(dict)
    return root.obj.setdefault("settings", {"verbosity": 0, "threads": None})


def _add_verbosity(ctx: click.Context, _param: click.Parameter, count: int) -> None:
    settings(ctx)["verbosity"] += count


def _set_threads(ctx: click.Context, _param: click.Parameter, value: int | None) -> None:
    if value is None:
        return
    given = settings(ctx)
    if given["threads"] not in (None, value):  # before and after the command's name
        raise click.UsageError(f"--threads is given twice, as {given['threads']} and {value}: give it once", ctx)
    given["threads"] = value


def refuse_repeated_options(command: click.Command, ctx: click.Context, args: list[str]) -> None:
    """A UsageError for an option that takes one value given twice with different values (click keeps the last
    silently: `-md a.h5 -md b.h5` predicted with b.h5 alone). Reads ``args`` up to the first argument that is no
    option of ``command`` (a group's command name) or ``--``."""
    options = {name: param for param in command.get_params(ctx) if isinstance(param, click.Option)
               and not (param.multiple or param.count or param.is_flag) for name in param.opts}
    seen: dict[str, tuple[str, str | None]] = {}
    position = 0
    while position < len(args) and args[position] != "--":
        name, equals, inline = args[position].partition("=")
        param = options.get(name if name.startswith("--") else args[position])
        if param is None:
            if isinstance(command, click.Group) and not args[position].startswith("-"):
                return
            position += 1
            continue
        value = inline if equals and name.startswith("--") else (args[position + 1] if position + 1 < len(args)
                                                                 else None)
        position += 1 if equals and name.startswith("--") else 2
        earlier = seen.setdefault(param.name, (name, value))
        if earlier[1] != value:
            raise click.UsageError(f"{earlier[0]} is given twice, as {earlier[1]} and {value}: give it once", ctx)


def global_options() -> list[click.Option]:
    """`-v` and `--threads`, as the group and every command accept them."""
    return [click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_add_verbosity,
                         help="-v: progress information, -vv: debug output and tracebacks."),
            click.Option(["--threads"], type=click.IntRange(min=1), expose_value=False, callback=_set_threads,
                         help="CPU threads for torch, TensorFlow and TFLite, fixed (default: the CPUs this process "
                              "may use, fewer while other processes keep some of them busy; see the README's 'CPU "
                              "threads').")]


def apply_settings(ctx: click.Context) -> None:
    """Apply the global options once all flags are parsed: logging and the thread policy (again: `import dspl`
    leaves it unapplied where a thread variable holds no count, which is reported here as one line)."""
    given = settings(ctx)
    set_verbosity(given["verbosity"])
    threads.configure(given["threads"])


def verbosity() -> int:
    """How many -v the running command was given (before or after its name)."""
    return settings(click.get_current_context())["verbosity"]


def existing(message: str, unmatched: str | None = None) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback: a DsplError ``<value>: <message>`` for a path that does not exist (a symbolic link counts
    as existing: what it points to is checked where it is read); where ``unmatched`` is given the value may be a
    glob pattern, and one that matches nothing gets ``<value>: <unmatched>``."""
    def check(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None or os.path.lexists(value):
            return value
        if unmatched is not None and _is_pattern(value):
            if glob.glob(value, recursive=True):
                return value
            raise DsplError(f"{value}: {unmatched}")
        raise DsplError(f"{value}: {message}")
    return check


def input_file(what: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback for a file dspl reads: a DsplError ``<value>: <what> not found``, or one naming a
    directory, FIFO, socket or device given instead of a regular file (dspl.files.regular_file)."""
    def check(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        return value if value is None else str(regular_file(value, what))
    return check


def output_file(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A click callback for a file dspl writes: refused at once where it is a named pipe, socket or device
    (dspl.files.replaceable), before the work that would end in replacing it."""
    return value if value is None else str(replaceable(value))


def _is_pattern(value: str) -> bool:
    return any(c in value for c in "*?[")


def model_in(value: str) -> str:
    """DeepSpectrumLite's `-md` names a model *dir*: a folder is taken for the one model file in it (its
    model.h5 where train wrote one beside its checkpoint); a DsplError lists several."""
    folder = Path(value)
    if not folder.is_dir():
        return value
    if (folder / DEFAULT_MODEL_FILE).is_file():
        chosen = folder / DEFAULT_MODEL_FILE
    else:
        candidates = sorted(p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES and p.is_file())
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "none"
            raise DsplError(f"{folder}: expected one model file ({', '.join(MODEL_SUFFIXES)}) in the folder, found "
                            f"{found}: name the file")
        chosen = candidates[0]
    click.echo(f"model: {chosen}", err=True)
    return str(chosen)


def model_path(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A click callback for a model file option: it exists (or is a pattern that matches), a folder is taken for
    the model file in it (model_in), and what it names is a regular file."""
    chosen = model_in(existing("model file not found", "the pattern matches no model file")(ctx, param, value))
    return chosen if _is_pattern(chosen) and not Path(chosen).exists() else input_file("model file")(ctx, param, chosen)

def whole_file_seconds_option(otherwise: str) -> Callable[[Callable], Callable]:
    """--whole-file-seconds, whose help ends with what the command does for other resize methods without it."""
    return click.option(
        "--whole-file-seconds", type=click.FloatRange(min=0, min_open=True),
        help="Whole-file configs (chunk_size <= 0): the preprocessor's fixed input length in seconds. Without it the "
             "input takes any length where TFLite has the resize built in (resize_method nearest, or bilinear without "
             f"anti_alias); {otherwise}.")


def _configs_option(hyper_help: str, class_help: str) -> Callable[[Callable], Callable]:
    """-hc/--hyper-config and -cc/--class-config, optional, with the given help texts; the command gets them read
    once, as one ``given`` argument (dspl.config.GivenConfigs)."""
    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def with_configs(*args: Any, hp_config: str | None, class_config: str | None, **kwargs: Any) -> Any:
            from dspl.config import GivenConfigs

            return command(*args, given=GivenConfigs.read(hp_config, class_config), **kwargs)

        with_configs = click.option("-cc", "--class-config", "class_config", type=click.Path(dir_okay=False),
                                    default=None, callback=input_file("class config"), help=class_help)(with_configs)
        return click.option("-hc", "--hyper-config", "hp_config", type=click.Path(dir_okay=False), default=None,
                            callback=input_file("hyper-parameter config"), help=hyper_help)(with_configs)
    return decorate


checked_configs_option = _configs_option(
    "dspl models: optional, checked against the stored configuration; DeepSpectrumLite Keras models: required.",
    "dspl models: optional, checked against the stored classes; DeepSpectrumLite Keras models: required.")
"""The configs of commands that run a model: a dspl model holds its own, a DeepSpectrumLite Keras model needs them."""

keras_configs_option = _configs_option(
    "Only for a DeepSpectrumLite Keras model.h5: the hyper-parameter config it was trained with.",
    "Only for a DeepSpectrumLite Keras model.h5: the class config it was trained with.")
"""The configs of commands that read a model file: only DeepSpectrumLite Keras models need them."""

batch_size_option = click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
                                 help="Chunks per forward pass.")

model_file_option = click.option("-md", "--model-dir", "model", required=True, type=click.Path(),
                                 callback=model_path,
                                 help="Model file (model.h5 or model.ckpt), or the folder holding it.")
"""The one model file of a command that runs it (the flag keeps DeepSpectrumLite's name)."""

audio_input_option = click.option(
    "-d", "--data-dir", "data", required=True, type=click.Path(),
    callback=existing("no such audio file or directory", "the pattern matches no audio files"),
    help="Audio file, directory (searched recursively) or glob such as 'audio/*.wav'.")
"""The audio of a command that reads files one by one, without a label file."""

output_dir_option = click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
                                 help="Output directory (created; sub-directories of --data-dir are kept).")
"""Where a command writes one output per input file, mirroring the input's directory tree."""


def training_options(model_dir_help: str, hyper_help: str) -> Callable[[Callable], Callable]:
    """DeepSpectrumLite's training flags, as `train` and `search` take them: -d (audio folder), -md (output folder,
    ``model_dir_help``), -hc (``hyper_help``), -cc, -l (files checked while the flags are parsed) and -dc."""
    options = [
        click.option("-d", "--data-dir", required=True, type=click.Path(exists=True, file_okay=False),
                     help="Directory of the audio files named in the label file."),
        click.option("-md", "--model-dir", required=True, type=click.Path(file_okay=False), help=model_dir_help),
        click.option("-hc", "--hyper-config", required=True, type=click.Path(exists=True, dir_okay=False),
                     callback=input_file("hyper-parameter config"), help=hyper_help),
        click.option("-cc", "--class-config", required=True, type=click.Path(exists=True, dir_okay=False),
                     callback=input_file("class config"), help="Class config (JSON: label -> name)."),
        click.option("-l", "--label-file", required=True, type=click.Path(exists=True, dir_okay=False),
                     callback=input_file("label file"),
                     help="Label file (ComParE CSV: filename,label[,duration_frames])."),
        click.option("-dc", "--disable-cache", is_flag=True, help="Do not keep decoded audio in memory."),
    ]

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):  # decorators apply bottom-up: the help lists them in this order
            command = option(command)
        return command
    return decorate
