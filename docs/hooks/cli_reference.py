"""MkDocs hook: the CLI reference page, generated from the argparse parsers at build time.

``ei_sim.cli.build_parser()`` builds the parser of every command; this hook walks it (the
commands, their subcommands, every option that ``--help`` shows) and renders one Markdown
page, ``reference/cli.md``, that exists only in the build (nothing is written into
``docs/``). Usage lines, descriptions, defaults, choices and help texts are argparse's own,
so the page cannot drift from the command line.
"""

from __future__ import annotations

import argparse
import os

PAGE = "reference/cli.md"

INTRO = """# Command-line reference

Generated from the argument parsers (`ei_sim.cli.build_parser()`) when these pages were
built: every command, subcommand and option that `--help` shows, with argparse's own usage
line, defaults and help. Old spellings that the commands still accept (`--wei`, `--wie`,
`--lr`, `--no-progress`, ...) are hidden aliases and not listed. How the options fit together
is in the [user guide](../guide/quickstart.md); `--set` and `--config` are explained under
[Parameters](../guide/parameters.md).
"""


def _escape(text: str) -> str:
    """Text for a Markdown table cell."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in ("\\", "|", "*", "_", "`", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name)


def _flags(action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(f"`{flag}`" for flag in action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    return f"{names} `{metavar}`"


def _default(action) -> str:
    if not action.option_strings or action.nargs == 0:
        return ""
    if action.default is None or action.default == [] or action.default is argparse.SUPPRESS:
        return ""
    return f"`{action.default}`"


def _options(parser) -> list[str]:
    """The table of a parser's options and positional arguments ([] when it has none)."""
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if action.help is argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            continue
        help_text = formatter._expand_help(action) if action.help else ""
        choices = ""
        if action.choices is not None:
            choices = ", ".join(f"`{c}`" for c in action.choices)
        rows.append(f"| {_flags(action)} | {_escape(help_text)} | {_default(action)} | {choices} |")
    if not rows:
        return []
    return ["| argument | meaning | default | choices |\n|---|---|---|---|", *rows, ""]


def _render(parser, path: list[str], summary: str | None, out: list[str]) -> None:
    depth = min(len(path), 4)
    out.append(f"{'#' * (depth + 1)} `{' '.join(path)}`\n")
    text = parser.description or summary
    if text:
        out.append(" ".join(text.split()) + "\n")
    out.append("```text\n" + parser.format_usage().strip() + "\n```\n")
    out.extend(_options(parser))
    for name, sub, sub_help in _subparsers(parser):
        _render(sub, [*path, name], sub_help, out)


def cli_markdown() -> str:
    """The whole reference page (Markdown)."""
    from ei_sim.cli import build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "90"  # argparse wraps usage lines to the terminal: fix the width
    try:
        return _page(build_parser()[0])
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _page(parser) -> str:
    out = [INTRO]
    commands = list(_subparsers(parser))
    out.append("| command | what it does |\n|---|---|")
    for name, _sub, sub_help in commands:
        out.append(f"| [`ei-sim {name}`](#ei-sim-{name}) | {_escape(sub_help or '')} |")
    out.append("")
    out.append("## `ei-sim`\n")
    out.append("```text\n" + parser.format_usage().strip() + "\n```\n")
    out.extend(_options(parser))
    out.append(
        "`ei-sim --version` prints the version; `ei-sim COMMAND --help` prints a "
        "command's options.\n"
    )
    for name, sub, sub_help in commands:
        _render(sub, ["ei-sim", name], sub_help, out)
    return "\n".join(out) + "\n"


def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=cli_markdown()))
    return files
