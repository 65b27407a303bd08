"""Command-line flags generated from dataclass fields: every option is declared once, on its field.

A field declared with :func:`option` carries its help text, unit and valid choices in its
``metadata``. From those fields :func:`add_flags` builds the argparse flags, :func:`values_from_args`
reads the parsed values back, and :func:`command_flags` writes the flags that reproduce a set of
values (the commands recorded in checkpoints, model cards and the manifest). Adding a field with
:func:`option` adds its flag, its help and its place in the recorded commands. Values are
validated by the dataclass itself (``__post_init__``), so the command line and the Python API
reject the same inputs with the same message.

This module imports nothing heavy: ``python -m training --help`` answers without torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

Choices = Iterable[Any] | Callable[[], Iterable[Any]]


def option(default: Any = dataclasses.MISSING, help: str = "", *, unit: str | None = None,
           choices: Choices | None = None, flag: str | None = None, cli: bool = True, record: bool = True,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that is also a command-line flag.

    Args:
        default: The field's default (leave out for a required field).
        help: One line: what the value means.
        unit: Unit of the value, shown as the flag's metavar (``--batch-size IMAGES``).
        choices: Valid values, or a function returning them (called when a parser is built); shown
            in the help. The dataclass checks them, so the error message is its own.
        flag: The flag when it is not ``--field-name`` (``--threads`` for ``num_threads``). A bool
            field whose default is True gets ``--no-field-name``, its help "no " + ``help``
            (so write it as a noun: "tqdm progress bar").
        cli: False: no flag (the value is set by code).
        record: False: never in a reproducing command (where to write, progress bars).
        default_factory: As for :func:`dataclasses.field`.
    """
    metadata = {"help": help, "unit": unit, "choices": choices, "flag": flag, "cli": cli, "record": record}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Flag:
    """The command-line side of one :func:`option` field."""

    field: dataclasses.Field
    flag: str               # "--batch-size"
    kind: type              # int, float, str or bool: how one value is parsed
    many: bool              # tuple/list field: the flag takes one or more values

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def default(self) -> Any:
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return self.field.default

    @property
    def required(self) -> bool:
        return self.field.default is dataclasses.MISSING and self.field.default_factory is dataclasses.MISSING

    def choices(self) -> list[Any] | None:
        found = self.field.metadata["choices"]
        return None if found is None else list(found() if callable(found) else found)


def _value_type(annotation: Any) -> tuple[type, bool]:
    """(type of one value, takes several values) of a field annotation such as ``int | None``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _value_type(next(a for a in typing.get_args(annotation) if a is not type(None)))
    if origin in (tuple, list):
        return typing.get_args(annotation)[0], True
    return annotation, False


def flags_of(cls: type, only: Iterable[str] | None = None, skip: Iterable[str] = ()) -> list[Flag]:
    """The flags of a dataclass's :func:`option` fields, in field order (``only``/``skip`` filter by name)."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        wanted = (only is None or f.name in only) and f.name not in skip
        if not (wanted and f.metadata.get("cli")):
            continue
        kind, many = _value_type(hints[f.name])
        flag = f.metadata["flag"]
        if flag is None:
            negate = kind is bool and f.default is True
            flag = ("--no-" if negate else "--") + f.name.replace("_", "-")
        found.append(Flag(f, flag, kind, many))
    return found


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
              only: Iterable[str] | None = None, skip: Iterable[str] = (), overrides: bool = False,
              defaults: dict[str, Any] | None = None, default_help: dict[str, str] | None = None) -> None:
    """Add one flag per :func:`option` field of ``cls``.

    Args:
        parser: Parser or argument group to add to.
        cls: The dataclass.
        only: Field names to add (default: all).
        skip: Field names to leave out.
        overrides: Every flag defaults to None, "keep the value from elsewhere" (recipe overrides
            of a manifest entry); required fields stay required.
        defaults: Command-line defaults that differ from the field's (None: decided later).
        default_help: How to describe a default in the help when it is not a plain value.
    """
    defaults, default_help = defaults or {}, default_help or {}
    for fl in flags_of(cls, only, skip):
        meta = fl.field.metadata
        default = None if overrides else defaults.get(fl.name, fl.default)
        required = fl.required and not overrides and fl.name not in defaults
        text, metavar = meta["help"], meta["unit"].upper() if meta["unit"] else None
        choices = fl.choices()
        if choices is not None:  # shown, not enforced here: the dataclass names the valid values
            listed = ",".join(map(str, choices))
            if len(listed) <= 30:
                metavar = "{" + listed + "}"
            else:
                text += f"; one of: {', '.join(map(str, choices))}"
        if fl.name in default_help:
            text += f" (default: {default_help[fl.name]})"
        elif not (overrides or required or fl.kind is bool or default is None):
            text += f" (default: {' '.join(map(str, default)) if fl.many else default})"
        if fl.flag.startswith("--no-"):
            text = "no " + text
        kwargs: dict[str, Any] = {"dest": fl.name, "default": default, "help": text.replace("%", "%%")}
        if fl.kind is bool:
            kwargs["action"] = "store_false" if fl.flag.startswith("--no-") else "store_true"
        else:
            kwargs.update(type=fl.kind, required=required, nargs="+" if fl.many else None, metavar=metavar)
        parser.add_argument(fl.flag, **kwargs)


def values_from_args(args: argparse.Namespace, cls: type, only: Iterable[str] | None = None,
                     skip: Iterable[str] = ()) -> dict[str, Any]:
    """Field name -> parsed value of the flags :func:`add_flags` added (lists become tuples)."""
    values = {}
    for fl in flags_of(cls, only, skip):
        if hasattr(args, fl.name):
            value = getattr(args, fl.name)
            values[fl.name] = tuple(value) if fl.many and value is not None else value
    return values


def command_flags(cls: type, values: dict[str, Any], *, only: Iterable[str] | None = None,
                  skip: Iterable[str] = (), keep_defaults: bool = False) -> list[str]:
    """The flags that reproduce ``values`` (argv items), for the fields recorded in commands.

    Fields come in ``cls.COMMAND_ORDER`` first (the order of commands recorded before), then in
    field order. Missing and None values are left out, and so are values equal to the field's
    default unless ``keep_defaults``.
    """
    order = list(getattr(cls, "COMMAND_ORDER", ()))
    flags = [fl for fl in flags_of(cls, only, skip) if fl.field.metadata["record"]]
    flags.sort(key=lambda fl: order.index(fl.name) if fl.name in order else len(order))  # stable: field order
    argv: list[str] = []
    for fl in flags:
        value = values.get(fl.name)
        if value is None or (not keep_defaults and not fl.required and value == fl.default):
            continue
        if fl.kind is bool:
            if value != fl.default:
                argv.append(fl.flag)
        elif fl.many:
            argv += [fl.flag, *map(str, value)]
        else:
            argv += [fl.flag, str(value)]
    return argv


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line that points at ``--help``."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
