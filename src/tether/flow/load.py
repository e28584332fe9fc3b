"""Reading flow files: YAML (and so JSON) with the line and column of every key and value.

Parsed by libyaml's C parser when PyYAML has it (``yaml.CSafeLoader``: ~10x faster on a big
flow), else by the pure-Python one; both give every node its line and column."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import limits
from ..errors import FlowError

Path_ = tuple[str | int, ...]
MAX_FLOW_BYTES = limits.FLOW_MAX_BYTES
# Nodes that YAML aliases may add to a document beyond its own: anchors for shared
# settings add a few, nested aliases ("billion laughs") would add billions.
MAX_ALIAS_NODES = 100_000
# the same safe loader, in C where PyYAML was built with libyaml
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Source:
    """A parsed flow document: ``data`` plus positions (1-based line, column) by path."""

    name: str
    text: str
    data: Any
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> str:
        """``file:line:col`` of the deepest known prefix of ``path``."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            pos = table.get(p) or self.values.get(p) or self.keys.get(p)
            if pos:
                return f"{self.name}:{pos[0]}:{pos[1]}"
            p = p[:-1]
        return f"{self.name}:1:1"


class _Builder:
    def __init__(self, source: Source, loader: Any) -> None:
        self.source = source
        self.loader = loader
        self.surrogates = _may_hold_surrogates(source.text)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.source.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if node.tag == _STR and isinstance(node, yaml.ScalarNode):
            # what the constructor would return for a plain string, without its overhead
            return self._text(node, path) if self.surrogates else node.value
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = (key_node.value if key_node.tag == _STR and isinstance(key_node, yaml.ScalarNode)
                       else self.loader.construct_object(key_node, deep=True))
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise FlowError("bad key", [f"{self._pos(key_node)}: mapping keys must be strings"])
                key = str(key) if not isinstance(key, str) else key
                if self.surrogates:
                    key = self._text(key_node, path + (key,), key)
                if key in out:
                    raise FlowError("duplicate key", [f"{self._pos(key_node)}: duplicate key {key!r}"])
                self.source.keys[path + (key,)] = (key_node.start_mark.line + 1,
                                                   key_node.start_mark.column + 1)
                out[key] = self.build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _text(self, node: yaml.Node, path: Path_, text: str | None = None) -> str:
        """``text`` (default: the node's value) with each surrogate pair (what JSON and YAML
        escape a character outside the Basic Multilingual Plane as, e.g. \\ud83c\\udf0d) made
        the character it encodes; FlowError naming the place for a lone surrogate, which
        is no character and could be stored nowhere."""
        text = node.value if text is None else text
        if text.isascii() or not _SURROGATE.search(text):
            return text
        try:
            return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError as exc:
            lone = text.encode("utf-16-le", "surrogatepass")[exc.start:exc.start + 2].decode(
                "utf-16-le", "surrogatepass")
            field = (".".join(map(str, path)) or "flow").encode("utf-8", "backslashreplace").decode()
            raise FlowError("lone surrogate", [
                f"{self._pos(node)}: {field}: \\u{ord(lone):04x} is a lone surrogate (half of a pair "
                "that escapes a character outside the BMP), not a character; escape the whole "
                "pair or write the character itself"]) from None

    def _pos(self, node: yaml.Node) -> str:
        return f"{self.source.name}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _may_hold_surrogates(text: str) -> bool:
    """Whether ``text`` may hold an escaped surrogate (JSON's ``\\ud83c``, YAML's
    ``\\U0000d83c``: any ``\\u`` is enough to look closer); only then are its strings
    checked one by one. Costs ~3 us on a 226 kB flow without a backslash, where a regex
    search for the escapes took 6 ms (docs/performance.md)."""
    return "\\" in text and ("\\u" in text or "\\U" in text)


def _join_pairs(text: str) -> str:
    """``text`` with each pair of surrogates in it (a str handed to :func:`parse_text`,
    e.g. from a JSON body; a file's text was decoded from UTF-8, which has none) made
    the character it encodes; a lone one is left for the YAML reader to refuse."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _check_aliases(root: yaml.Node, name: str) -> None:
    """Refuse (FlowError naming the line) a composed document that an alias makes refer
    to itself, or whose aliases would expand it by more than MAX_ALIAS_NODES nodes.

    Runs before anything is built, over the composed graph (an alias is the anchored
    node itself, shared), with each node's expanded size computed once: a small file
    of nested aliases costs no more than its own nodes."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def where(node: yaml.Node) -> str:
        return f"{name}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_:
            raise FlowError("recursive alias",
                            [f"{where(node)}: this node refers to itself through an alias"])
        open_.add(id(node))
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1
        open_.discard(id(node))
        sizes[id(node)] = total
        if total > len(sizes) + MAX_ALIAS_NODES:  # len(sizes): distinct nodes so far
            raise FlowError("alias bomb", [
                f"{where(node)}: YAML aliases expand this node to {total:,} nodes; aliases may add at "
                f"most {MAX_ALIAS_NODES:,} nodes to a flow file (nested aliases, a 'billion laughs'?)"])
        return total

    size(root)


def parse_source(source: Source, loader_class: Any) -> Any:
    """The document of ``source.text``, its positions recorded in ``source``; yaml errors
    are raised as they are, FlowError for an empty document or an alias bomb."""
    loader = loader_class(source.text)  # refuses control characters here already
    try:
        node = loader.get_single_node()
        if node is None:
            raise FlowError("empty", [f"{source.name}:1:1: the flow file is empty"])
        if "&" in source.text:  # no anchor, no alias: nothing to check
            _check_aliases(node, source.name)
        return _Builder(source, loader).build(node, ())
    finally:
        loader.dispose()


def parse_text(text: str, name: str = "<flow>") -> Source:
    """Parse YAML or JSON text; FlowError with the position on a syntax error. A text
    libyaml refuses is parsed again by the pure-Python parser, so that errors read exactly
    as they always have (libyaml words some differently and leaves out names)."""
    if len(text.encode("utf-8", "replace")) > MAX_FLOW_BYTES:
        raise FlowError("too large", [f"{name}: flow file is larger than {MAX_FLOW_BYTES} bytes"])
    source = Source(name, _join_pairs(text), None)
    try:
        source.data = parse_source(source, _Loader)
    except (yaml.YAMLError, UnicodeEncodeError):  # libyaml cannot take a lone surrogate in a str
        source.values.clear()
        source.keys.clear()
        try:
            source.data = parse_source(source, yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            pos = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else f"{name}:1:1"
            raise FlowError("syntax", [f"{pos}: YAML syntax error: {exc.problem or exc}"]) from None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a lone surrogate)
            before = source.text[:exc.position]
            pos = f"{name}:{before.count(chr(10)) + 1}:{exc.position - before.rfind(chr(10))}"
            raise FlowError("syntax", [f"{pos}: character \\u{exc.character:04x} is not allowed in a flow"
                                       + (" (a lone surrogate)" if 0xD800 <= exc.character <= 0xDFFF else "")]
                            ) from None
        except yaml.YAMLError as exc:
            raise FlowError("syntax", [f"{name}:1:1: YAML error: {exc}"]) from None
    if not isinstance(source.data, dict):
        raise FlowError("not a mapping",
                        [f"{name}:1:1: a flow file must be a mapping with 'name' and 'steps'"])
    return source


def read_file(path: str | os.PathLike[str]) -> Source:
    """Read and parse a ``.yaml``, ``.yml`` or ``.json`` flow file."""
    p = Path(path)
    if p.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise FlowError("bad suffix", [f"{p}: flow files must end in .yaml, .yml or .json"])
    try:
        if not p.is_file():  # a device, FIFO or directory would hang or stream forever
            if not p.exists():
                raise FlowError("missing", [f"{p}: no such flow file"])
            raise FlowError("not a file", [f"{p}: a flow file must be a regular file"])
        with p.open("rb") as f:
            data = f.read(MAX_FLOW_BYTES + 1)
        if len(data) > MAX_FLOW_BYTES:
            raise FlowError("too large", [f"{p}: flow file is larger than {MAX_FLOW_BYTES} bytes"])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError("unreadable", [f"{p}: cannot read the flow file: {exc}"]) from None
    return parse_text(text, str(p))
