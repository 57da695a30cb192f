"""Griffe extension for the API reference: Sphinx cross-reference roles as code.

ei-sim's docstrings name other objects the Sphinx way, ``:func:`ei_sim.sim.engine.step```,
``:class:`~ei_sim.sim.config.NetworkConfig```. mkdocstrings renders Markdown, where such a
role would show its ``:func:`` prefix; this extension rewrites each role as inline code of
its target (the last component only, for a ``~`` target, as Sphinx shows it).
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj|const):`(~?)([^`]+)`")


def _code(match: re.Match) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def plain_roles(text: str) -> str:
    """``text`` with every Sphinx role replaced by inline code of its target."""
    return ROLE.sub(_code, text)


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
