"""How `--help` reads: plain metavars (FILE, N, PATH) instead of Python types, and command
summaries shown whole.  Applied to the built click commands, so every command module gets it
without repeating it."""

from __future__ import annotations

from typer.core import TyperArgument, TyperGroup

# Metavars for typer's type labels, for options that do not name their own.
_BY_LABEL = {"int": "N", "int range": "N", "float": "NUMBER", "float range": "NUMBER", "path": "PATH",
             "str": "TEXT"}


class _PlainArgument(TyperArgument):
    """An argument listed by its metavar alone (typer would add `<str>` after it)."""

    def display_type_rich(self, ctx) -> str | None:
        return None


def _metavar(param) -> str:
    # Typer's label of the type, "<int range>" or "<list[Path]>", as a metavar (N, PATH).
    label = param.display_type(None).strip("<>")
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    if "|" in label:
        return "[" + label + "]"
    return _BY_LABEL.get(label.lower(), label.upper())


def first_sentence(text: str) -> str:
    """A command's summary: the first sentence of its help."""
    para = " ".join((text or "").strip().split("\n\n")[0].split())
    end = para.find(". ")
    return para if end < 0 else para[: end + 1]


def tidy(cmd) -> None:
    """Give every parameter of `cmd` (and of its subcommands) a plain metavar."""
    # Typer builds its own (vendored) click classes: recognised by what they are, not by class.
    for p in cmd.params:
        if p.param_type_name == "option" and not (p.is_flag or p.count) and p.metavar is None:
            p.metavar = _metavar(p)
        elif isinstance(p, TyperArgument):
            if p.metavar is None:
                p.metavar = p.name.upper()
            p.__class__ = _PlainArgument
    for sub in getattr(cmd, "commands", {}).values():
        tidy(sub)


class GraderGroup(TyperGroup):
    """The command groups: tidied metavars, and each command's summary wrapped, never cut."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tidy(self)

    def format_commands(self, ctx, formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            # The first sentence of the help, whole (click would cut it at the column's width).
            rows.append((name, cmd.short_help or first_sentence(cmd.help)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
