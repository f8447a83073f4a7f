"""Bounded YAML: the one way depthgate turns config text into data.

A repository's ``gateway-routes.yaml`` is written by whoever can push to it, so parsing it must
cost time and memory in proportion to its size. Three things break that in plain ``SafeLoader``:

- aliases: ``*a`` re-uses the node anchored ``&a``; nine levels of nine aliases make 600 bytes
  that every walk of the loaded data sees as 387 million strings ("billion laughs");
- depth: the composer and the constructor recurse once per level, so ``[`` x 100,000 ends in
  ``RecursionError`` long before any validation can say what is wrong;
- size: a text larger than any real config is refused before the scanner starts.

:class:`BoundedLoader` refuses the first two while the event stream is composed -- before a node
exists to walk -- and :func:`load_yaml` checks the size first. Duplicate keys are refused as
well: the last one silently winning hides the mistake. Every failure is a one-line
:class:`ConfigError` that names the source, the line and column, and what to do.
"""

from __future__ import annotations

from typing import Any

import yaml

from depthgate.core.errors import ConfigError

# About three times the packaged routes and depth rules together (23 KB); pure-Python YAML reads
# ~150 KB/s on a loaded 2-core machine, so the largest accepted file costs a worker < 0.5 s.
MAX_CONFIG_BYTES = 64 * 1024
MAX_DEPTH = 32  # the schema nests 5 levels; room for flow-style lists of mappings


class _Refused(yaml.YAMLError):
    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` without anchors, aliases (and so ``<<`` merges) or duplicate keys, and with
    at most :data:`MAX_DEPTH` nested collections."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                "anchors and aliases (`&name`, `*name`, `<<: *name`) are not allowed in this file; "
                "write each value out",
                event.start_mark,
            )
        collection = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    f"nested more than {MAX_DEPTH} levels deep; a route config needs a handful",
                    event.start_mark,
                )
        try:
            node = super().compose_node(parent, index)
        finally:
            if collection:
                self._depth -= 1
        return node


def _construct_mapping(loader: BoundedLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            fresh = key not in seen
        except TypeError:  # a list or mapping as a key: unhashable, and never a valid key here
            problem = "a key must be a plain value, not a list or mapping"
            raise yaml.constructor.ConstructorError(
                None, None, problem, key_node.start_mark
            ) from None
        if not fresh:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen.add(key)
    return dict(loader.construct_pairs(node))


BoundedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, source: str, *, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """Parse ``text`` (YAML, and so JSON too) within the bounds above; ``source`` names it in
    error messages."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ConfigError(
            f"{source}: {size:,} bytes, over the {max_bytes:,}-byte limit for a config file; "
            f"a route config is a few KB -- is this the right file?"
        )
    try:
        return yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problem = " ".join(str(problem).split())  # one line, whatever the scanner wrote
        kind = "" if isinstance(exc, _Refused) else "not valid YAML: "
        raise ConfigError(f"{source}{where}: {kind}{problem}") from None
