"""Repository context beyond Python (localcoder.context.languages): each language's import forms on small
repositories made here, re-export chains, same-package names, includes, outlines on a blank line, file versions,
and the root's walls (links and `..`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcoder.context import gather, languages, resolver
from localcoder.context.languages import definitions
from localcoder.context.languages.definitions import parse, parse_buffer, top_level
from localcoder.context.repository import repository_at
from localcoder.context.resolver import Deadline, resolver_for
from tests.helpers import checked_document, localcoder


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / ".git").mkdir(exist_ok=True)  # a root marker; without git's index every file counts
    return root


def context_at(root: Path, name: str, text: str, budget: int = 1024, **options):
    """The context at the end of `text` (a buffer `name` under `root`; it need not exist)."""
    return gather(root / name, text, len(text), budget=budget, counter=lambda s: len(s) // 3 + 1, **options)


def covering(context, path: str, line: int) -> list:
    return [s for s in context.snippets if s.path == path and s.start_line <= line <= s.end_line]


def assert_resolved(context, path: str, line: int) -> None:
    """A definition or outline snippet covers `line`: the line that writes the definition's name, as in
    `make bench-context-langs`."""
    hits = covering(context, path, line)
    assert hits, f"no snippet covers {path}:{line}: {[(s.path, s.start_line, s.why) for s in context.snippets]}"
    assert any(s.why.startswith(("definition of", "outline")) for s in hits), [s.why for s in hits]


SCRIPT = {
    "src/util.ts": (
        "/** Adds two numbers. */\nexport function add(a: number, b: number): number {\n  return a + b;\n}\n\n"
        "export const LIMIT = 10;\n\nexport default class Registry {\n  items: string[] = [];\n}\n"
    ),
    "src/shapes/index.ts": "export * from './circle';\nexport { square as box } from './square';\n",
    "src/shapes/circle.ts": "export interface Circle {\n  radius: number;\n}\n",
    "src/shapes/square.ts": (
        "export type Square = { side: number };\nexport function square(n: number) {\n  return n;\n}\n"
    ),
    "src/barrel.ts": "export * from './shapes';\nexport * as u from './util';\n",
    "lib/helpers.js": (
        "function slugify(text) {\n  return text.toLowerCase();\n}\n\n"
        "function trim(text) {\n  return text.trim();\n}\n\n"
        "module.exports = { slugify, clean: trim };\nexports.VERSION = '1.0';\n"
    ),
    "lib/klass.js": "class Parser {\n  parse(x) {\n    return x;\n  }\n}\nmodule.exports = Parser;\n",
    "lib/esm.mjs": "export function fromModule() {}\n",
    "src/platform/index.ts": (
        "import * as common from './common';\nimport node from './node';\n\n"
        "export default {\n  ...common,\n  ...node,\n};\n"
    ),
    "src/platform/common.ts": "export const hasWindow = true;\n",
    "src/platform/node.ts": "export default {\n  isNode: true,\n};\n",
}
SCRIPT_USES = [
    ("named", "src/app.ts", "import { add } from './util';\n\nconst x = add(", ("src/util.ts", 2)),
    ("aliased", "src/app.ts", "import { add as plus } from './util';\n\nplus(", ("src/util.ts", 2)),
    ("default", "src/app.ts", "import Reg from './util';\n\nnew Reg(", ("src/util.ts", 8)),
    ("namespace", "src/app.ts", "import * as u from './util';\n\nu.LIMIT + ", ("src/util.ts", 6)),
    ("x.js written for x.ts", "src/app.ts", "import { add } from './util.js';\n\nadd(", ("src/util.ts", 2)),
    ("index file", "src/app.ts", "import { Circle } from './shapes';\n\nlet c: Circle", ("src/shapes/circle.ts", 1)),
    ("export ... as ... from", "src/app.ts", "import { box } from './shapes';\n\nbox(", ("src/shapes/square.ts", 2)),
    (
        "re-export chain",
        "src/app.ts",
        "import { Circle } from './barrel';\n\nlet c: Circle",
        ("src/shapes/circle.ts", 1),
    ),
    ("export * as ns", "src/app.ts", "import { u } from './barrel';\n\nu.add(", ("src/util.ts", 2)),
    ("require whole", "lib/app.js", "const h = require('./helpers');\n\nh.slugify(", ("lib/helpers.js", 1)),
    ("require renamed key", "lib/app.js", "const h = require('./helpers');\n\nh.clean(", ("lib/helpers.js", 5)),
    (
        "require destructured",
        "lib/app.js",
        "const { slugify } = require('./helpers');\n\nslugify(",
        ("lib/helpers.js", 1),
    ),
    ("exports.N", "lib/app.js", "const h = require('./helpers');\n\nh.VERSION", ("lib/helpers.js", 10)),
    ("module.exports = X", "lib/app.js", "const Parser = require('./klass');\n\nnew Parser(", ("lib/klass.js", 1)),
    ("a spread is a use", "src/app.ts", "import { add } from './util';\n\nconst xs = [...add", ("src/util.ts", 2)),
    ("spread namespace", "src/app.ts", "import p from './platform';\n\np.hasWindow", ("src/platform/common.ts", 1)),
    ("spread default object", "src/app.ts", "import p from './platform';\n\np.isNode", ("src/platform/node.ts", 2)),
    ("tsx and .mjs", "src/view.tsx", "import { fromModule } from '../lib/esm.mjs';\n\nfromModule(", ("lib/esm.mjs", 1)),
]


@pytest.mark.parametrize(("rule", "name", "text", "gold"), SCRIPT_USES, ids=[u[0] for u in SCRIPT_USES])
def test_typescript_and_javascript_imports(tmp_path: Path, rule: str, name: str, text: str, gold) -> None:
    context = context_at(make_repo(tmp_path, SCRIPT), name, text)
    assert_resolved(context, *gold)


TSCONFIG = """{
  // comments, trailing commas and a URL in a string, as tsconfig.json allows
  "$schema": "https://json.schemastore.org/tsconfig",
  "compilerOptions": {
    "baseUrl": "./src", /* paths are relative to it */
    "paths": {"@shapes/*": ["missing/*", "shapes/*"], "@util": ["util.ts"], "@out/*": ["../../outside/*"],},
  },
}
"""
ALIASED = [
    ("paths with *", "import { Circle } from '@shapes/circle';\n\nlet c: Circle", ("src/shapes/circle.ts", 1)),
    ("exact paths", "import { add } from '@util';\n\nadd(", ("src/util.ts", 2)),
    ("baseUrl", "import { add } from 'util';\n\nadd(", ("src/util.ts", 2)),
]


@pytest.mark.parametrize(("rule", "text", "gold"), ALIASED, ids=[u[0] for u in ALIASED])
def test_tsconfig_paths_and_base_url(tmp_path: Path, rule: str, text: str, gold) -> None:
    root = make_repo(tmp_path / "repo", {**SCRIPT, "tsconfig.json": TSCONFIG})
    assert_resolved(context_at(root, "src/deep/app.ts", text), *gold)
    (root / "tsconfig.json").write_text("{ not json")  # a broken config: bare specifiers stay unresolved
    assert not [s for s in context_at(root, "src/deep/app.ts", text).snippets if s.kind != "window"]


def test_tsconfig_paths_stay_inside_the_root(tmp_path: Path) -> None:
    make_repo(tmp_path / "outside", {"secret.ts": "export function secret() {}\n"})
    root = make_repo(tmp_path / "repo", {**SCRIPT, "tsconfig.json": TSCONFIG})
    text = "import { secret } from '@out/secret';\nimport { add } from '@util';\n\nsecret("
    context = context_at(root, "src/app.ts", text)
    assert all("secret" not in s.text for s in context.snippets)
    assert_resolved(context, "src/util.ts", 2)  # the control: the same config's other alias resolves


def test_a_signature_comes_first_with_the_doc_comment_that_fits(tmp_path: Path) -> None:
    """gather() first shows a head's first lines within a small share of the budget, and grows them downwards
    only: a doc comment above the signature comes along only when both fit that first cut, else the signature
    starts the head (a long doc used to fill the cut and hide the signature)."""
    root = make_repo(tmp_path, {**SCRIPT, "src/short.ts": "// Sums.\nexport function sum(a) {\n  return a;\n}\n"})
    tight = context_at(root, "src/app.ts", "import { add } from './util';\n\nadd(", budget=36)
    assert [(s.path, s.start_line, s.end_line) for s in tight.snippets] == [("src/util.ts", 2, 2)]
    short = context_at(root, "src/app.ts", "import { sum } from './short';\n\nsum(", budget=36)
    assert [(s.path, s.start_line, s.end_line) for s in short.snippets] == [("src/short.ts", 1, 2)]
    roomy = context_at(root, "src/app.ts", "import { add } from './util';\n\nadd(", budget=400)
    assert covering(roomy, "src/util.ts", 4)  # the body follows while budget is left


def test_a_namespace_gives_its_outline_on_a_blank_line(tmp_path: Path) -> None:
    root = make_repo(tmp_path, SCRIPT)
    context = context_at(root, "src/app.ts", "import * as u from './util';\n\nfunction f() {\n  ")
    for line in (2, 6, 8):  # add, LIMIT, Registry: what `u.` may call
        assert covering(context, "src/util.ts", line)
    typed = context_at(root, "src/app.ts", "import * as u from './util';\n\nfunction f() {\n  return 1;")
    assert not typed.snippets  # a line being typed that uses nothing imported: no outline


GO = {
    "go.mod": "module example.com/shop\n\ngo 1.22\n",
    "store/store.go": (
        "package store\n\n// Open opens the store at path.\n"
        "func Open(path string) (*DB, error) {\n\treturn nil, nil\n}\n"
        "\n// DB is a store.\ntype DB struct {\n\tpath string\n}\n"
    ),
    "store/limits.go": "package store\n\nconst (\n\tMaxItems = 10\n\tMaxSize  = 20\n)\n",
    "store/store_test.go": "package store\n\nfunc helperForTests() {}\n",
    "cmd/serve/main.go": "package main\n\nfunc main() {}\n",
    "cmd/serve/flags.go": (
        "package main\n\n// parseFlags reads the flags.\nfunc parseFlags() []string {\n\treturn nil\n}\n"
    ),
}
GO_USES = [
    ("pkg.N", 'package main\n\nimport "example.com/shop/store"\n\nfunc run() {\n\tstore.Open(', ("store/store.go", 4)),
    ("aliased", 'package main\n\nimport s "example.com/shop/store"\n\nvar _ = s.MaxSize', ("store/limits.go", 5)),
    ("own package", "package main\n\nfunc run() {\n\targs := parseFlags(", ("cmd/serve/flags.go", 4)),
]


@pytest.mark.parametrize(("rule", "text", "gold"), GO_USES, ids=[u[0] for u in GO_USES])
def test_go_packages(tmp_path: Path, rule: str, text: str, gold) -> None:
    context = context_at(make_repo(tmp_path, GO), "cmd/serve/run.go", text)
    assert_resolved(context, *gold)
    assert not covering(context, "store/store_test.go", 3)  # a test file is not the package an import sees


def test_a_comment_after_code_is_not_the_next_declaration_s_doc(tmp_path: Path) -> None:
    """`A struct{...} // about A` then `B ...`: the comment is A's, so B starts on its own line (it started on A's,
    both had one key, and B was shown as A's one-line head); a comment on its own line is still a doc."""
    shapes = (
        "package shapes\n\ntype (\n\tSquare struct{ X int } // Equal on value receiver\n"
        "\tCircle struct{ R int } // Equal on pointer receiver\n\t// Triangle has three sides.\n"
        "\tTriangle struct{ A, B, C int }\n)\n"
    )  # Square on line 4, Circle on 5, Triangle's doc on 6
    names = {d.name: d for d in top_level("go", parse("go", shapes))}
    assert [names[n].start_line for n in ("Square", "Circle", "Triangle")] == [4, 5, 6]
    root = make_repo(tmp_path, {"go.mod": "module example.com/m\n\ngo 1.22\n", "shapes/shapes.go": shapes})
    text = 'package main\n\nimport "example.com/m/shapes"\n\nvar a = shapes.Square{}\nvar b = shapes.Circle{'
    context = context_at(root, "main.go", text)
    assert_resolved(context, "shapes/shapes.go", 4)
    assert_resolved(context, "shapes/shapes.go", 5)


def test_go_dot_import_puts_the_package_in_scope(tmp_path: Path) -> None:
    root = make_repo(tmp_path, GO)
    dotted = 'package main\n\nimport . "example.com/shop/store"\n\nfunc run() {\n\tOpen('
    assert_resolved(context_at(root, "cmd/serve/run.go", dotted), "store/store.go", 4)
    plain = 'package main\n\nimport "example.com/shop/store"\n\nfunc run() {\n\tOpen('
    found = covering(context_at(root, "cmd/serve/run.go", plain), "store/store.go", 4)
    assert not [s for s in found if s.kind != "window"]  # the control: `Open` alone is not store's


def test_go_outlines_its_packages_on_a_blank_line(tmp_path: Path) -> None:
    root = make_repo(tmp_path, GO)
    text = 'package main\n\nimport "example.com/shop/store"\n\nfunc run() {\n\tdb, _ := store.Open("x")\n\t'
    context = context_at(root, "cmd/serve/run.go", text)
    assert_resolved(context, "store/limits.go", 4)  # the package's outline: store.MaxItems may come next
    assert_resolved(context, "cmd/serve/flags.go", 4)  # and the own package's


RUST = {
    "Cargo.toml": '[package]\nname = "my-shop"\nversion = "0.1.0"\n',
    "src/lib.rs": "pub mod store;\npub mod util;\npub use store::reexported::*;\npub use util::slug as slugify;\n",
    "src/store/mod.rs": (
        "pub mod reexported;\n\n/// The store.\n#[derive(Debug)]\npub struct Store {\n    items: Vec<u32>,\n}\n\n"
        "pub trait Backend {\n    fn get(&self) -> u32;\n}\n"
    ),
    "src/store/reexported.rs": "pub enum Kind {\n    A,\n    B,\n}\n\npub const LIMIT: usize = 4;\n",
    "src/util.rs": "/// Slugs.\npub fn slug(s: &str) -> String {\n    s.to_lowercase()\n}\n\npub type Id = u64;\n",
}
RUST_USES = [
    ("use path", "src/main.rs", "use crate::store::Store;\n\nfn f() -> Store", ("src/store/mod.rs", 5)),
    ("group and as", "src/main.rs", "use crate::{util::{self, Id as Key}};\n\nfn f(k: Key", ("src/util.rs", 6)),
    ("self in a group", "src/main.rs", "use crate::util::{self};\n\nfn f() { util::slug(", ("src/util.rs", 2)),
    ("crate name", "src/main.rs", "use my_shop::store::Backend;\n\nimpl Backend", ("src/store/mod.rs", 9)),
    ("pub use as", "src/main.rs", "use crate::slugify;\n\nfn f() { slugify(", ("src/util.rs", 2)),
    ("pub use glob", "src/main.rs", "use crate::Kind;\n\nfn f() -> Kind", ("src/store/reexported.rs", 1)),
    ("super::", "src/store/reexported.rs", "use super::Store;\n\nfn f(s: Store", ("src/store/mod.rs", 5)),
    ("self:: in mod.rs", "src/store/mod.rs", "use self::reexported::LIMIT;\n\nconst X: usize = LIMIT", None),
    ("path in code", "src/main.rs", "fn f() {\n    crate::util::slug(", ("src/util.rs", 2)),
    ("a glob import", "src/main.rs", "use crate::util::*;\n\nfn f() {\n    slug(", ("src/util.rs", 2)),
]


@pytest.mark.parametrize(("rule", "name", "text", "gold"), RUST_USES, ids=[u[0] for u in RUST_USES])
def test_rust_use_trees(tmp_path: Path, rule: str, name: str, text: str, gold) -> None:
    root = make_repo(tmp_path, RUST)
    if gold is None:  # editing mod.rs itself: its own file is not offered back, the submodule is
        gold = ("src/store/reexported.rs", 6)
        (root / name).write_text(text)
    assert_resolved(context_at(root, name, text), *gold)


RUST_MODULES = {
    **RUST,
    "src/lib.rs": RUST["src/lib.rs"]
    + '#[path = "platform/unix_impl.rs"]\npub mod sys;\npub mod inline {\n    pub fn helper() {}\n'
    + "    pub mod deeper {\n        pub struct Deep;\n    }\n}\n"
    + "#[cfg(test)]\nmod tests {\n    fn only_in_tests() {}\n}\n",
    "src/platform/unix_impl.rs": "pub fn open_fd() -> i32 {\n    0\n}\n",
}  # lib.rs: helper on line 8, Deep on line 10, only_in_tests on line 15
RUST_MODULE_USES = [
    ("#[path] mod", "src/main.rs", "use crate::sys::open_fd;\n\nfn f() { open_fd(", ("src/platform/unix_impl.rs", 1)),
    (
        "#[path] mod in the buffer",
        "src/other.rs",
        '#[path = "platform/unix_impl.rs"]\nmod sys;\n\nfn f() { sys::open_fd(',
        ("src/platform/unix_impl.rs", 1),
    ),
    ("inline mod's item", "src/main.rs", "use crate::inline::helper;\n\nfn f() { helper(", ("src/lib.rs", 8)),
    ("inline mod used whole", "src/main.rs", "use crate::inline;\n\nfn f() { inline::helper(", ("src/lib.rs", 8)),
    ("nested inline mods", "src/main.rs", "use crate::inline::deeper::Deep;\n\nfn f() -> Deep", ("src/lib.rs", 10)),
    ("path in code", "src/main.rs", "fn f() -> crate::inline::deeper::Deep", ("src/lib.rs", 10)),
]


@pytest.mark.parametrize(("rule", "name", "text", "gold"), RUST_MODULE_USES, ids=[u[0] for u in RUST_MODULE_USES])
def test_rust_path_attributes_and_inline_modules(tmp_path: Path, rule: str, name: str, text: str, gold) -> None:
    assert_resolved(context_at(make_repo(tmp_path, RUST_MODULES), name, text), *gold)


def test_an_unknown_item_of_an_inline_module_is_not_the_module(tmp_path: Path) -> None:
    """`crate::lib::std::ops::Add` (nom re-exports the standard library from an inline module): unresolved, not
    the `mod std {` line; a type's item (`Kind::A`) still resolves to the type."""
    root = make_repo(tmp_path, RUST_MODULES)
    unknown = context_at(root, "src/main.rs", "fn f() {\n    crate::inline::deeper::Nothing(")
    assert not [s for s in covering(unknown, "src/lib.rs", 9) if s.kind != "window"]
    assert_resolved(context_at(root, "src/main.rs", "fn f() {\n    crate::Kind::A"), "src/store/reexported.rs", 1)


def test_a_rust_test_module_is_not_the_crate_s_api(tmp_path: Path) -> None:
    root = make_repo(tmp_path, RUST_MODULES)
    tests = context_at(root, "src/main.rs", "fn f() {\n    crate::tests::only_in_tests(")
    assert not [s for s in covering(tests, "src/lib.rs", 15) if s.kind != "window"]
    assert_resolved(context_at(root, "src/main.rs", "fn f() {\n    crate::inline::helper("), "src/lib.rs", 8)


JAVA = {
    "pom.xml": "<project/>",
    "src/main/java/com/shop/Store.java": (
        "package com.shop;\n\n/** The store. */\npublic class Store {\n    public int size() {\n        return 0;\n"
        "    }\n}\n"
    ),
    "src/main/java/com/shop/util/Strings.java": (
        "package com.shop.util;\n\npublic final class Strings {\n    public static String slug(String s) {\n"
        "        return s;\n    }\n}\n"
    ),
    "src/main/java/com/shop/util/Ids.java": "package com.shop.util;\n\npublic interface Ids {\n}\n",
}
JAVA_USES = [
    (
        "single import",
        "src/main/java/com/shop/App.java",
        "package com.shop;\n\nimport com.shop.util.Strings;\n\nclass App {\n  String s = Strings.slug(",
        ("src/main/java/com/shop/util/Strings.java", 3),
    ),
    (
        "wildcard import",
        "src/main/java/com/shop/App.java",
        "package com.shop;\n\nimport com.shop.util.*;\n\nclass App implements Ids",
        ("src/main/java/com/shop/util/Ids.java", 3),
    ),
    (
        "static import",
        "src/main/java/com/shop/App.java",
        "package com.shop;\n\nimport static com.shop.util.Strings.slug;\n\nclass App {\n  String s = slug(",
        ("src/main/java/com/shop/util/Strings.java", 3),
    ),
    (
        "same package across src/main and src/test",
        "src/test/java/com/shop/StoreTest.java",
        "package com.shop;\n\nclass StoreTest {\n  Store s = new Store(",
        ("src/main/java/com/shop/Store.java", 3),
    ),
]


@pytest.mark.parametrize(("rule", "name", "text", "gold"), JAVA_USES, ids=[u[0] for u in JAVA_USES])
def test_java_imports_and_packages(tmp_path: Path, rule: str, name: str, text: str, gold) -> None:
    assert_resolved(context_at(make_repo(tmp_path, JAVA), name, text), *gold)


def test_a_head_shows_the_name_below_annotations(tmp_path: Path) -> None:
    """Java's annotations belong to the class's node, above the line that names it; the head starts at the name
    (gather()'s first cut of a head is short: two annotation lines filled it)."""
    legacy = (
        'package com.shop;\n\n@Deprecated(since = "2", forRemoval = true)\n@SuppressWarnings({"unchecked", "raw"})\n'
        "public class Legacy {\n}\n"
    )
    root = make_repo(tmp_path, {**JAVA, "src/main/java/com/shop/Legacy.java": legacy})
    text = "package com.shop;\n\nclass App {\n  Legacy l = new Legacy("
    context = context_at(root, "src/main/java/com/shop/App.java", text, budget=40)  # no room to grow a head
    assert_resolved(context, "src/main/java/com/shop/Legacy.java", 5)


C = {
    "include/shop/store.h": (
        '#ifndef SHOP_STORE_H\n#define SHOP_STORE_H\n#include "types.h"\n\n/* Opens the store. */\n'
        "store_t *store_open(const char *path);\n\n#define STORE_MAX 64\n\n#endif\n"
    ),
    "include/shop/types.h": "typedef struct store {\n    int fd;\n} store_t;\n\nenum kind { KIND_A, KIND_B };\n",
    "src/cache.hpp": "namespace shop {\nclass Cache {\n  public:\n    int size() const;\n};\n}\n",
}
C_USES = [
    (
        "include",
        "src/main.c",
        '#include "shop/store.h"\n\nint main(void) {\n    store_open(',
        ("include/shop/store.h", 6),
    ),
    ("nested include", "src/main.c", '#include "shop/store.h"\n\nstatic store_t *s', ("include/shop/types.h", 3)),
    ("macro", "src/main.c", '#include "shop/store.h"\n\nchar buf[STORE_MAX', ("include/shop/store.h", 8)),
    ("C++ namespace", "src/main.cpp", '#include "cache.hpp"\n\nshop::Cache c', ("src/cache.hpp", 2)),
]


@pytest.mark.parametrize(("rule", "name", "text", "gold"), C_USES, ids=[u[0] for u in C_USES])
def test_c_includes(tmp_path: Path, rule: str, name: str, text: str, gold) -> None:
    assert_resolved(context_at(make_repo(tmp_path, C), name, text), *gold)


BUILD_FILES = [
    ("Makefile", "CFLAGS += -Wall -I$(OUT)/gen -Izeta -I ../outside\n"),
    ("CMakeLists.txt", "target_include_directories(app PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/zeta ../outside)\n"),
    ("compile_commands.json", '[{"directory": "/x", "arguments": ["cc", "-I", "zeta", "-I../outside", "m.c"]}]'),
    ("src/compile_commands.json", '[{"command": "cc -I../zeta -I../../outside -c main.c"}]'),
]


@pytest.mark.parametrize(("build", "text"), BUILD_FILES, ids=[b[0] for b in BUILD_FILES])
def test_c_include_folders_from_the_build_files(tmp_path: Path, build: str, text: str) -> None:
    """Two headers named config.h: the one in the build's -I folder is the one meant (the listing would find the
    other first); a -I folder outside the root is not read."""
    make_repo(tmp_path / "outside", {"secret.h": "int secret(void);\n"})
    files = {"alpha/config.h": "int alpha_only(void);\n", "zeta/config.h": "int zeta_only(void);\n"}
    root = make_repo(tmp_path / "repo", files)
    text_c = '#include "config.h"\n#include "secret.h"\n\nint main(void) {\n    zeta_only('
    before = context_at(root, "src/main.c", text_c)
    assert not covering(before, "zeta/config.h", 1)  # the control: without the build file, the other config.h
    (root / build).parent.mkdir(exist_ok=True)
    (root / build).write_text(text)
    context = context_at(root, "src/main.c", text_c)
    assert_resolved(context, "zeta/config.h", 1)
    assert all("secret" not in s.text for s in context.snippets)


def test_an_include_guard_is_not_a_definition(tmp_path: Path) -> None:
    context = context_at(make_repo(tmp_path, C), "src/main.c", '#include "shop/store.h"\n\nint x = SHOP_STORE_H')
    assert not [s for s in covering(context, "include/shop/store.h", 2) if s.kind != "window"]


def test_a_typedef_struct_shows_the_line_that_names_it(tmp_path: Path) -> None:
    """`typedef struct {...} T;` names T on its closing line: a head (full or compact, short or long struct) must
    reach that line, else the model sees fields of a type without its name."""
    fields = "".join(f"    int field{n};\n" for n in range(20))
    header = (
        "/* A point. */\ntypedef struct {\n    int x;\n    int y;\n    int z;\n    int w;\n} point_t;\n\n"
        f"typedef struct big {{\n{fields}}} big_t;\n"
    )  # point_t closes on line 7; big_t on line 30
    root = make_repo(tmp_path, {"geometry.h": header})
    used = context_at(root, "main.c", '#include "geometry.h"\n\nint area(point_t *p, big_t *b) {\n    return ')
    assert_resolved(used, "geometry.h", 7)
    assert_resolved(used, "geometry.h", 30)
    outlined = context_at(root, "main.c", '#include "geometry.h"\n\nint main(void) {\n    ')  # blank: the outline
    assert_resolved(outlined, "geometry.h", 7)
    assert_resolved(outlined, "geometry.h", 30)
    point = next(d for d in top_level("c", parse("c", header)) if d.name == "point_t")
    assert (point.signature, point.name_line) == (2, 7)


API_HEADER = (
    '#if defined(__cplusplus)\nextern "C" {\n#endif\n'
    "LIB_API LIB_BOOLEAN lib_set_level(int level);\n"  # line 4: C++'s grammar reads `LIB_BOOLEAN lib_set_level`
    "int plain_call(void);\n"  # line 5
    "LIB_API struct compression_dictionary_state *\nlib_prepare_dictionary(int size);\n"  # the name on line 7
    "static int\nshort_type(void);\n"  # line 9
    "#if defined(__cplusplus)\n}\n#endif\n"
)


@pytest.mark.parametrize(("name", "line"), [("lib_set_level", 4), ("plain_call", 5), ("lib_prepare_dictionary", 7)])
def test_a_c_api_macro_before_the_type_keeps_the_function_s_name(tmp_path: Path, name: str, line: int) -> None:
    """`API T f(...)` in an `extern "C"` block: C++'s grammar (which reads every .h) takes `T f` for a name
    qualified by T; the name is f, so a use of f resolves (it was `LIB_BOOLEAN lib_set_level`, used nowhere).
    plain_call is the control."""
    root = make_repo(tmp_path, {"api.h": API_HEADER})
    assert_resolved(context_at(root, "main.c", f'#include "api.h"\n\nint main(void) {{\n    {name}('), "api.h", line)


def test_a_c_head_starts_on_the_line_that_writes_the_function_s_name(tmp_path: Path) -> None:
    """`T *` above `f(...)`: gather()'s first cut of a head shows its first lines, so a head starts on f's line when the
    return type's line does not fit HEAD_CHARS with it (it showed only the type), and above it when it does."""
    root = make_repo(tmp_path, {"api.h": API_HEADER})
    names = {d.name: d for d in top_level("cpp", parse("cpp", API_HEADER))}
    assert (names["lib_prepare_dictionary"].signature, names["lib_prepare_dictionary"].name_line) == (6, 7)
    assert names["plain_call"].name_line == 0  # one line: nothing to reach
    text = '#include "api.h"\n\nint main(void) {\n    lib_prepare_dictionary(1);\n    short_type();\n    '
    language = resolver_for(root / "main.c")
    found = language.candidates(repository_at(root), root / "main.c", text, len(text), {}, Deadline.never())
    starts = {f.start_line: f for f in found}
    assert 7 in starts and 6 not in starts, sorted(starts)
    assert 8 in starts and starts[8].end_line >= 9  # the control: `static int` fits with its name's line


def test_a_header_included_directly_outlines_before_one_included_through_it(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        {"outer.h": '#include "inner.h"\nint alpha_run(void);\n', "inner.h": "int beta_run(void);\n"},
    )
    text = '#include "outer.h"\n\nint main(void) {\n    '
    language = resolver_for(root / "main.c")
    found = language.candidates(repository_at(root), root / "main.c", text, len(text), {}, Deadline.never())
    scores = {f.path.name: f.score for f in found}
    assert set(scores) == {"outer.h", "inner.h"}  # both outlined: the nested include is in scope
    assert scores["outer.h"] == 2 * scores["inner.h"]


def test_a_name_used_often_ranks_above_one_used_once_a_little_nearer(tmp_path: Path) -> None:
    """Each use counts a little besides its distance: three uses 200 lines above outrank one use 50 lines above
    (by distance alone, 3/201 < 1/51)."""
    root = make_repo(tmp_path, {"api.h": "int alpha(void);\nint beta(void);\n"})
    lines = ['#include "api.h"', "void f(void) {", "    alpha();", "    alpha();", "    alpha();"]
    lines += ["    x += 1;"] * 150 + ["    beta();"] + ["    x += 1;"] * 49 + ["    "]
    text = "\n".join(lines)
    language = resolver_for(root / "main.c")
    found = language.candidates(repository_at(root), root / "main.c", text, len(text), {}, Deadline.never())
    scores = {f.why.split(".")[0].split(" ")[-1]: f.score for f in found if f.why.startswith("definition")}
    assert scores["alpha"] > scores["beta"] > 0, scores


def test_a_big_header_s_entries_weigh_less_each_than_a_small_one_s(tmp_path: Path) -> None:
    """An outline of N > OUTLINE_ENTRIES entries weighs each by sqrt(OUTLINE_ENTRIES / N): 200 unrelated prototypes
    of lots.h no longer crowd out one.h's one (they tied, and lots.h sorted first), while a lots.h entry whose name
    the lines near the cursor write still comes first."""
    big = "".join(f"int big_fn_{i}(void);\n" for i in range(200)) + "int big_fn_main_loop(void);\n"
    root = make_repo(tmp_path, {"lots.h": big, "one.h": "int small_run(void);\n"})
    text = '#include "lots.h"\n#include "one.h"\n\nint main(void) {\n    '
    language = resolver_for(root / "main.c")
    found = language.candidates(repository_at(root), root / "main.c", text, len(text), {}, Deadline.never())
    order = [(f.path.name, f.start_line) for f in found]
    assert order[0] == ("lots.h", 201), order[:3]  # the control: words near the cursor still rank first
    assert order[1] == ("one.h", 1), order[:3]
    scores = {(f.path.name, f.start_line): f.score for f in found}
    assert scores[("one.h", 1)] == pytest.approx(2 * scores[("lots.h", 1)], rel=0.01)  # sqrt(50 / 201)


@pytest.mark.parametrize("below, counted", [(50, True), (150, True), (250, False)])
def test_uses_below_the_cursor_are_read_200_lines_down(tmp_path: Path, below: int, counted: bool) -> None:
    """A name imported and used only further down (rxjs's `Subscription` in a types file) ranks by those uses up
    to 200 lines below the cursor (100 before: 150 lines down was not read); further down it is not read."""
    root = make_repo(tmp_path, {"sub.ts": "export class Sub {}\n", "other.ts": "export const other = 1;\n"})
    head = "import { Sub } from './sub';\nimport { other } from './other';\n\nother;\n"
    text = head + "\n" + "let x = 1;\n" * (below - 1) + "let s: Sub;\n"
    language = resolver_for(root / "app.ts")
    found = language.candidates(repository_at(root), root / "app.ts", text, len(head), {}, Deadline.never())
    names = {f.path.name for f in found}
    assert "other.ts" in names  # the control: a use above the cursor
    assert ("sub.ts" in names) is counted, [(f.path.name, f.why) for f in found]


def test_nothing_outside_the_root_is_read(tmp_path: Path) -> None:
    outside = make_repo(tmp_path / "outside", {"secret.ts": "export function secret() {}\n"})
    (outside / "secret.h").write_text("int secret(void);\n")
    (outside / "secret.go").write_text("package outside\n\nfunc Secret() {}\n")
    root = make_repo(tmp_path / "repo", {"src/util.ts": SCRIPT["src/util.ts"], "go.mod": "module example.com/m\n"})
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "src" / "escape.ts").symlink_to(outside / "secret.ts")
    (root / "src" / "escape.h").symlink_to(outside / "secret.h")
    uses = {
        "src/app.ts": "import { secret } from './escape';\nimport { add } from './util';\n\nsecret(",  # a link out
        "src/b.ts": "import { secret } from '../../outside/secret';\nimport { add } from './util';\n\nsecret(",  # `..`
        "src/main.c": '#include "escape.h"\n#include "../../outside/secret.h"\n\nint x = secret(',
        "cmd/a.go": 'package main\n\nimport "example.com/m/../../outside"\n\nvar _ = outside.Secret(',
        "cmd/b.go": 'package main\n\nimport "example.com/m/linked"\n\nvar _ = outside.Secret(',
    }
    for name, text in uses.items():
        context = context_at(root, name, text)
        assert not any("outside" in s.path or "escape" in s.path for s in context.snippets), name
        assert all("secret" not in s.text for s in context.snippets), name
        if name.endswith(".ts"):
            assert_resolved(context, "src/util.ts", 2)  # the import inside the root still resolves


def test_files_are_parsed_once_per_version(tmp_path: Path) -> None:
    root = make_repo(tmp_path, SCRIPT)
    text = "import { add } from './util';\n\nadd("
    assert_resolved(context_at(root, "src/app.ts", text), "src/util.ts", 2)
    repository = repository_at(root)
    kept = {key: value for key, value in repository._stamped.items() if key[0].startswith("summary")}
    assert kept  # parsed summaries are kept
    context_at(root, "src/app.ts", text)
    assert all(repository._stamped[key][1] is value[1] for key, value in kept.items())  # a warm call reuses them
    (root / "src/util.ts").write_text("\n\n\nexport function add(a: number) {\n  return a;\n}\n")
    assert_resolved(context_at(root, "src/app.ts", text), "src/util.ts", 4)  # a changed file is parsed again


def test_a_header_s_includes_are_parsed_once_per_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first warm call reuses what the cold one read of the headers' includes (it parsed them all again: they
    were kept from the second call on); a header that changes is read again (the control)."""
    from localcoder.context.languages import c

    parsed: list[str] = []
    real_parse = c.parse
    monkeypatch.setattr(c, "parse", lambda grammar, text: parsed.append(text) or real_parse(grammar, text))
    root = make_repo(
        tmp_path,
        {"outer.h": '#include "inner.h"\n', "inner.h": "int inner_run(void);\n", "other.h": "int other_run(void);\n"},
    )
    text = '#include "outer.h"\n\nint main(void) {\n    '
    assert_resolved(context_at(root, "main.c", text), "inner.h", 1)
    assert parsed  # the cold call parsed outer.h for its includes
    parsed.clear()
    context_at(root, "main.c", text)
    assert parsed == []
    (root / "outer.h").write_text('#include "other.h"\n#include "inner.h"\n')
    assert_resolved(context_at(root, "main.c", text), "other.h", 1)
    assert parsed


def test_an_expired_deadline_returns_at_once(tmp_path: Path) -> None:
    root = make_repo(tmp_path, GO)
    edited = root / "cmd/serve/run.go"
    text = 'package main\n\nimport "example.com/shop/store"\n\nfunc run() {\n\tstore.Open('
    resolver = resolver_for(edited)
    assert resolver is not None
    repository = repository_at(root)
    assert resolver.candidates(repository, edited, text, len(text), {}, Deadline.never())  # the positive control
    assert resolver.candidates(repository, edited, text, len(text), {}, Deadline.after(-1)) == []


def test_a_language_without_a_grammar_keeps_windows(tmp_path: Path) -> None:
    shared = "def parse_header(line)\n  key, value = line.split(':')\n  [key, value]\nend\n"
    root = make_repo(tmp_path, {"lib/headers.rb": shared * 4, "lib/other.rb": "x = 1\n"})
    assert resolver_for(root / "lib/app.rb") is None
    context = context_at(root, "lib/app.rb", "key, value = parse_header(line.split(':')")
    assert [s.path for s in context.snippets] == ["lib/headers.rb"]
    assert "identifier Jaccard" in context.snippets[0].why


def test_windows_fill_what_the_resolver_cannot_follow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line that uses nothing the imports name (a global, a name put there by a build step) gets the
    repository's identifier windows in the budget the definitions left, as in a language without a resolver;
    in C a .c file's windows come from headers too."""
    shared = "function parseHeader(line) {\n  const [key, value] = line.split(':');\n  return [key, value];\n}\n"
    header = "#define KEY_SEP ':'\nint parse_header(const char *line, char *key, char *value);\n"
    root = make_repo(tmp_path, {"lib/headers.js": shared * 4, "lib/other.js": "x = 1\n", "c/headers.h": header * 6})
    text = "const [key, value] = parseHeader(line.split(':')"
    c_text = "int main(void) {\n    parse_header(line, key, value"
    context = context_at(root, "lib/app.js", text)
    assert [(s.path, s.kind) for s in context.snippets] == [("lib/headers.js", "window")]
    assert [(s.path, s.kind) for s in context_at(root, "c/main.c", c_text).snippets] == [("c/headers.h", "window")]
    language = resolver_for(root / "lib/app.js")
    monkeypatch.setattr(type(language), "windows_for", lambda self, edited, budget, left: ())
    assert not context_at(root, "lib/app.js", text).snippets  # the control: without the hook, nothing


def test_the_buffer_is_reparsed_incrementally_to_the_same_tree() -> None:
    first = "import { add } from './util';\n\nconst é = add(1, 2);\n\nexport function f() {\n  return é;\n}\n"
    edits = [
        first.replace("add(1, 2)", "add(1, 2) + add(3, 4)"),  # typed in the middle
        first.replace("const é", "// ünïcode\nconst é"),  # a line with multi-byte characters added above
        first[:40],  # most of it deleted
        "",
    ]
    parse_buffer("buffer.ts", "typescript", first)
    for text in edits:
        kept = parse_buffer("buffer.ts", "typescript", text)
        fresh = parse("typescript", text)
        assert kept is not None and fresh is not None
        assert str(kept.root_node) == str(fresh.root_node)
        assert [d.name for d in top_level("typescript", kept)] == [d.name for d in top_level("typescript", fresh)]


def test_the_context_command_resolves_other_languages(tmp_path: Path) -> None:
    root = make_repo(tmp_path, GO)
    run = root / "cmd" / "serve" / "run.go"
    run.write_text('package main\n\nimport "example.com/shop/store"\n\nfunc run() {\n\tstore.Open("x")\n}\n')
    done = localcoder("context", f"{run}:6", "--json", "--budget", "300")
    assert done.returncode == 0, done.stderr
    snippets = checked_document("context", done.stdout)["snippets"]
    assert ("store/store.go", 4) in [(s["path"], s["start_line"]) for s in snippets]  # its signature first
    assert any(s["why"].startswith("definition of store.Open") for s in snippets)


def test_a_missing_grammar_leaves_its_language_to_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = definitions.parser_for
    monkeypatch.setattr(definitions, "parser_for", lambda grammar: None if grammar == "go" else installed(grammar))
    monkeypatch.setattr(resolver, "_REGISTRY", {})
    languages.load()
    assert resolver._REGISTRY.get(".go") is None  # no Go grammar: Go files keep identifier windows
    assert resolver._REGISTRY.get(".ts") is not None and resolver._REGISTRY.get(".rs") is not None


def test_a_huge_buffer_is_read_in_its_imports_and_around_the_cursor(tmp_path: Path) -> None:
    root = make_repo(tmp_path, SCRIPT)
    filler = "".join(f"const v{i} = {i};\n" for i in range(100_000))  # about 2 MB between the import and the use
    text = "import { add } from './util';\n" + filler + "const x = add("
    assert_resolved(context_at(root, "src/app.ts", text), "src/util.ts", 2)
    # The control: the same buffer with nothing imported resolves nothing from util.ts.
    plain = context_at(root, "src/app.ts", filler + "const x = add(")
    assert not any(s.why.startswith("definition of") and s.path == "src/util.ts" for s in plain.snippets)
