"""YAML as vyxops reads it: anchors and aliases refused, nesting bounded, before anything is built.

An alias names a node defined earlier, so a few hundred bytes of nested aliases (a
"billion laughs" document, :data:`ALIAS_BOMB`) stand for hundreds of millions of nodes,
and any walk over them never ends. No YAML vyxops reads needs them: the shipped and test
scenarios use none, and flyctl writes its ``config.yml`` with Go's yaml encoder, which
emits none. So a document is scanned event by event (linear in its size) and the first
anchor or alias is refused, with its line, before a node is composed.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

__all__ = ["YamlRefused", "check_events", "alias_bomb", "ALIAS_BOMB", "MAX_DEPTH"]

#: Deeper nesting than this is refused (the composer recurses once per level; no file vyxops reads nests past ~8).
MAX_DEPTH = 64

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class YamlRefused(ValueError):
    """Why a YAML document is refused, and on which line (1-based)."""

    message: str
    line: int | None

    def __str__(self) -> str:
        return self.message


def check_events(text: str) -> None:
    """Raise :class:`YamlRefused` at the first anchor, alias or over-deep nesting in ``text``.

    A document that is not YAML at all is left for the real parse to report (``yaml.YAMLError``).
    """
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlRefused("uses a YAML anchor or alias (&name / *name), which vyxops does not read", line)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlRefused(f"nests deeper than {MAX_DEPTH} levels", line)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" document: ``levels`` anchors, each a list of nine aliases of the one before (9**levels)."""
    names = [chr(ord("a") + i) for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [" + ",".join(['"lol"'] * 9) + "]"]
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


#: The issue's bomb: 9 levels (387,420,489 strings), a few hundred bytes. ``make faults`` feeds it to every reader.
ALIAS_BOMB = alias_bomb()
