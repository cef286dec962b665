"""Top-level definitions of a source file with tree-sitter, for every language but Python (which has `ast`).

One parser per grammar, loaded on first use from its prebuilt wheel (tree-sitter-typescript, -javascript, -rust,
-go, -java, -c, -cpp); a grammar that is not installed makes `parse` return None and the language falls back to
identifier windows. tree-sitter recovers from errors, so a buffer with a half-typed line still yields its imports
and definitions. A 200 KB Rust file parses in about 55 ms here (2 shared cores); the edited buffer is reparsed
incrementally from its last version, about 1 ms a keystroke (`parse_buffer`).

A definition is a top-level function, class, interface, type alias, enum, struct, trait, const, static or variable
(and, in C and C++, a prototype, a macro, and what namespaces, `extern "C"` blocks and `#if` guards hold; in Rust,
an inline `mod m { ... }` and its items, named `m::item`, unless under `#[cfg(test)]`). Its
`start_line` takes in the doc comments and attributes right above it, `head_end` ends its signature (the line where
its body opens; the whole of a short declaration), `end_line` ends the whole of it.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from tree_sitter import Language, Node, Parser, Tree

# Grammar name -> (wheel module, function returning the language pointer).
GRAMMARS = {
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "javascript": ("tree_sitter_javascript", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}
COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
DOC_ABOVE = frozenset({*COMMENTS, "attribute_item", "decorator"})
BODIES = frozenset(
    {
        "statement_block", "class_body", "interface_body", "object_type", "enum_body", "block", "declaration_list",
        "field_declaration_list", "enumerator_list", "compound_statement", "enum_variant_list", "constructor_body",
        "annotation_type_body", "struct_type", "interface_type",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Definition:
    name: str
    start_line: int  # 1-based; doc comments and attributes above included
    head_end: int  # last line of the signature (and doc)
    end_line: int  # last line of the whole definition
    own_line: int = 0  # where the declaration itself starts, below its doc (0: start_line)
    exported: bool = True  # reachable from another file: `export`ed, `pub`, a capitalised Go name
    name_line: int = 0  # where the name is written when that is below the signature (C's `} T;`), else 0

    @property
    def signature(self) -> int:
        return self.own_line or self.start_line


@functools.cache
def parser_for(grammar: str) -> Parser | None:
    """A parser for the grammar, or None when its wheel is missing (the language keeps windows)."""
    module_name, function = GRAMMARS[grammar]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return Parser(Language(getattr(module, function)()))


def parse(grammar: str, text: str) -> Tree | None:
    parser = parser_for(grammar)
    return parser.parse(text.encode("utf-8")) if parser is not None else None


_BUFFERS: OrderedDict[tuple[str, str], tuple[bytes, Tree]] = OrderedDict()
_BUFFERS_LOCK = threading.Lock()
KEPT_BUFFERS = 16


def parse_buffer(key: str, grammar: str, text: str) -> Tree | None:
    """The edited buffer's tree, reparsed incrementally from its last version (a keystroke in a 200 KB file costs
    about 1 ms, a full parse 55 ms): the edit is the span between their common prefix and suffix."""
    parser = parser_for(grammar)
    if parser is None:
        return None
    new = text.encode("utf-8")
    with _BUFFERS_LOCK:
        kept = _BUFFERS.pop((key, grammar), None)
    if kept is None:
        tree = parser.parse(new)
    else:
        old, old_tree = kept
        start = _common_prefix(old, new)
        tail = _common_prefix(old[start:][::-1], new[start:][::-1])
        old_end, new_end = len(old) - tail, len(new) - tail
        old_tree.edit(start, old_end, new_end, _point(old, start), _point(old, old_end), _point(new, new_end))
        tree = parser.parse(new, old_tree)
    with _BUFFERS_LOCK:
        _BUFFERS[(key, grammar)] = (new, tree)
        while len(_BUFFERS) > KEPT_BUFFERS:
            _BUFFERS.popitem(last=False)
    return tree


def _common_prefix(a: bytes, b: bytes) -> int:
    """The length of the common prefix, by halving (each comparison a memcmp)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _point(data: bytes, offset: int) -> tuple[int, int]:
    row = data.count(b"\n", 0, offset)
    return row, offset - (data.rfind(b"\n", 0, offset) + 1)


def node_text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def definition(name: str, node: Node, outer: Node | None = None, name_line: int = 0) -> Definition:
    """`node` (the declaration) as a Definition; `outer` is the statement that holds it (an export, a template),
    whose doc comments count; `name_line` where the name is written, when a head might not reach it."""
    top = outer or node
    start = top.start_point.row
    above = top.prev_named_sibling
    while above is not None and above.type in DOC_ABOVE and above.end_point.row >= start - 1:
        before = above.prev_sibling
        if before is not None and before.end_point.row == above.start_point.row:
            break  # `A struct{...} // about A` above B: a comment after code on its line is that code's, not B's doc
        start = above.start_point.row
        above = above.prev_named_sibling
    end = top.end_point.row
    if top.end_point.column == 0 and end > top.start_point.row:
        end -= 1  # a preprocessor line's node takes in its newline
    body = _body(node)
    head = body.start_point.row if body is not None else end
    head_end = max(head, top.start_point.row) + 1
    named = name_line if name_line > top.start_point.row + 1 else 0
    return Definition(name, start + 1, head_end, end + 1, top.start_point.row + 1, name_line=named)


def _body(node: Node) -> Node | None:
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    for child in node.named_children:  # Go's type specs, Rust's structs: the body is a typed child
        if child.type in BODIES:
            return child
        if child.type in ("type_spec", "function_declarator"):
            return _body(child)
    return None


# --- per grammar: the named definitions one top-level node holds -------------------------------------------------


def _named(node: Node, outer: Node | None = None) -> list[Definition]:
    """A declaration with a `name` field; where annotations or decorators come first (Java's `@ReactModule(...)`
    on the line above `public class X`, which its node holds), the line that writes the name is kept."""
    name = node.child_by_field_name("name")
    return [definition(node_text(name), node, outer, name.start_point.row + 1)] if name is not None else []


def _script(node: Node, outer: Node | None = None) -> list[Definition]:
    """TypeScript and JavaScript: declarations, `export` and `export default` around them, `declare` blocks."""
    kind = node.type
    if kind == "export_statement":
        inner = node.child_by_field_name("declaration")
        found = _script(inner, node) if inner is not None else []
        value = node.child_by_field_name("value")
        is_default = any(c.type == "default" for c in node.children)
        if is_default and found:
            found.append(replace(found[0], name="default"))
        elif is_default and value is not None and value.type in ("class", "function_expression", "arrow_function"):
            found.append(definition("default", value, node))
        return found
    if kind == "ambient_declaration":
        return [d for child in node.named_children for d in _script(child, outer or node)]
    if kind in ("lexical_declaration", "variable_declaration"):
        found = []
        for declarator in node.named_children:
            name = declarator.child_by_field_name("name")
            if declarator.type == "variable_declarator" and name is not None and name.type == "identifier":
                found.append(definition(node_text(name), declarator if outer is None else node, outer or node))
        return found
    if kind in SCRIPT_NAMED:
        return _named(node, outer)
    return []


SCRIPT_NAMED = frozenset(
    {
        "function_declaration", "generator_function_declaration", "class_declaration", "abstract_class_declaration",
        "interface_declaration", "type_alias_declaration", "enum_declaration", "function_signature", "module",
        "internal_module",
    }
)  # fmt: skip


def _rust(node: Node, outer: Node | None = None) -> list[Definition]:
    if node.type in RUST_NAMED:
        return _named(node, outer)
    body = node.child_by_field_name("body") if node.type == "mod_item" else None
    if body is None or _cfg_test(node):
        return []
    module = node_text(node.child_by_field_name("name"))  # `mod m { ... }`: m itself, and its items as m::name
    inner = [d for child in body.named_children for d in _rust(child)]
    return [definition(module, node, outer), *(replace(d, name=f"{module}::{d.name}") for d in inner)]


def _cfg_test(node: Node) -> bool:
    """Whether an item is under `#[cfg(test)]` (a test module's helpers are not the crate's API)."""
    above = node.prev_named_sibling
    while above is not None and above.type in DOC_ABOVE:
        if above.type == "attribute_item" and "cfg(test)" in node_text(above).replace(" ", ""):
            return True
        above = above.prev_named_sibling
    return False


RUST_NAMED = frozenset(
    {
        "function_item", "function_signature_item", "struct_item", "enum_item", "union_item", "trait_item",
        "type_item", "const_item", "static_item", "macro_definition",
    }
)  # fmt: skip


def _go(node: Node, outer: Node | None = None) -> list[Definition]:
    if node.type == "function_declaration":
        return _named(node)
    if node.type in ("type_declaration", "const_declaration", "var_declaration"):
        specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias", "const_spec", "var_spec")]
        found = []
        for spec in specs:
            holder = node if len(specs) == 1 else None  # a lone spec: the declaration's doc is its doc
            for name in spec.children_by_field_name("name"):
                found.append(definition(node_text(name), spec if holder is None else node, holder))
        return found
    return []


def _java(node: Node, outer: Node | None = None) -> list[Definition]:
    if node.type in JAVA_NAMED:
        return _named(node, outer)
    return []


JAVA_NAMED = frozenset(
    {
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "annotation_type_declaration",
    }
)


def _c(node: Node, outer: Node | None = None) -> list[Definition]:
    kind = node.type
    if kind in C_CONTAINERS:
        body = node.child_by_field_name("body")
        children = body.named_children if body is not None else node.named_children
        return [d for child in children for d in _c(child)]
    if kind == "template_declaration":
        return [d for child in node.named_children for d in _c(child, node)]
    if kind == "preproc_function_def" or (kind == "preproc_def" and node.child_by_field_name("value") is not None):
        return _named(node)  # a macro without a value is an include guard or a switch, not an API
    if kind in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier"):
        name = node.child_by_field_name("name")
        has_body = node.child_by_field_name("body") is not None
        return [definition(node_text(name), node, outer)] if name is not None and has_body else []
    if kind in ("function_definition", "declaration", "type_definition", "alias_declaration"):
        found = []
        declarators = node.children_by_field_name("declarator")
        last = max((d.end_point.row + 1 for d in declarators), default=0)  # `} T;`: a head must reach this line
        kind_node = node.child_by_field_name("type")
        if kind_node is not None and kind_node.child_by_field_name("body") is not None:
            tags = _c(kind_node, node)  # typedef struct S {...} T; declares S as well, and shows both names
            found += [replace(tag, name_line=max(tag.name_line, last)) if kind == "type_definition" else tag
                      for tag in tags]  # fmt: skip
        for declarator in declarators:
            identifier = _declared(declarator)
            if identifier is not None:  # a typedef's name is on its last line; `T *\nf(...)` names f below the type
                written = (declarator.end_point if kind == "type_definition" else identifier.start_point).row + 1
                found.append(definition(node_text(identifier), node, outer, written))
        name = node.child_by_field_name("name")  # C++'s `using T = ...`
        if kind == "alias_declaration" and name is not None:
            found.append(definition(node_text(name), node, outer))
        return found
    return []


C_CONTAINERS = frozenset(
    {
        "preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef", "linkage_specification",
        "namespace_definition", "declaration_list",
    }
)  # fmt: skip


def _declared(declarator: Node) -> Node | None:
    """The identifier a C declarator declares: `*f(int)` -> f, `(*p)[3]` -> p, `a = 1` -> a, `ns::f()` -> f. A
    qualified name counts by its last part: C++'s grammar reads `API T f(...)` in an `extern "C"` block (brotli's
    public headers) as `T f`, a name qualified by T, and the whole of that was the name."""
    node: Node | None = declarator
    while node is not None:
        if node.type in ("identifier", "type_identifier", "field_identifier", "destructor_name", "operator_name"):
            return node if node_text(node) else None
        if node.type == "qualified_identifier":
            node = node.child_by_field_name("name")
            continue
        node = node.child_by_field_name("declarator") or (node.named_children[0] if node.named_children else None)
    return None


EXTRACTORS: dict[str, Callable[[Node], list[Definition]]] = {
    "typescript": _script, "tsx": _script, "javascript": _script, "rust": _rust, "go": _go, "java": _java,
    "c": _c, "cpp": _c,
}  # fmt: skip


def top_level(grammar: str, tree: Tree) -> list[Definition]:
    """The file's top-level definitions in file order, each marked whether another file can reach it."""
    extract = EXTRACTORS[grammar]
    found = []
    for node in tree.root_node.named_children:
        for one in extract(node):
            if one.name and not _exported(grammar, node, one):
                one = replace(one, exported=False)
            if one.name:
                found.append(one)
    return found


def _exported(grammar: str, node: Node, found: Definition) -> bool:
    if grammar in ("typescript", "tsx", "javascript"):
        return node.type == "export_statement"
    if grammar == "go":
        return found.name[:1].isupper()
    if grammar == "rust":
        return any(child.type == "visibility_modifier" for child in node.children)
    return True


def walk(node: Node, types: frozenset[str], stop: frozenset[str] = frozenset()) -> Iterator[Node]:
    """Nodes of the given types under `node`, not descending into those in `stop`."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in types:
            yield current
        if current.type not in stop:
            stack.extend(reversed(current.named_children))


__all__ = ["Definition", "node_text", "parse", "parser_for", "top_level", "walk"]
