#!/usr/bin/env python3
"""Fails when the crate's modules depend on each other in a cycle.

Usage:
    scripts/check-module-cycles.py [--root DIR] [--all-refs] [--edges]
    scripts/check-module-cycles.py --self-test

Reads the crate at DIR (default: this repository) without building it: no cargo, no packages
beyond Python 3.11's standard library.

Nodes are the modules of each crate root that Cargo.toml names or that Cargo finds by
convention (src/lib.rs, src/main.rs, src/bin/*.rs), following `mod x;` to `x.rs` or `x/mod.rs`,
plus inline `mod x { ... }` blocks. Test-only code is not read: an item under `#[cfg(test)]`
(such as `mod tests { ... }`, or a `use` only tests need) and a file that starts with
`#![cfg(test)]`; tests/ and benches are other crates and are not read either.

Module A depends on module B when A's code (comments and string literals skipped) names a path
in B: `use crate::b::...` (groups such as `use crate::{a, b::c}` expanded), `crate::b::x`
anywhere in code, `super::` and `self::` relative to A, a path through a name that A imported
(`use crate::store; ... store::local::put()`), and, in a binary, `<library>::b::x`. A path
counts for the longest prefix of it that is a module. A path that ends in an ancestor of A
(`super::Engine`, `crate::Result`) counts for the module that ancestor imported the name from,
if it did.

Cycles are judged among siblings: an edge from x::a::... to x::b::... (a and b different
children of their lowest common ancestor x) counts as x::a -> x::b. A module and its own
ancestors or descendants never make an edge, in either direction: a parent naming its children
(an engine registry) and children using their parent's items is the normal pattern. Any
strongly connected component of two or more siblings is a cycle. Paths between two crates
(a binary using the library) are not counted: the library cannot name the binary.

Each cycle (a strongly connected group, with the simple cycles through it) is printed with
every edge in it and the file:line of one reference that creates the edge (--all-refs: every
reference); the exit code is then 1. Otherwise it prints
"no module cycles (N modules, M edges)", M counting the dependencies between modules
that are not nested in each other, and exits 0.

Limits: names brought in by a glob (`use x::*`) and bare names are not resolved (their `use`
line is), macros other than `$crate::` paths are not expanded, and `#[path]` is not supported.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Lexing: blank out comments and literals, keeping every offset and newline.


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c == "_"


_RAW_STR = re.compile(r'[bc]?r(#*)"')


def strip_code(s: str) -> str:
    """Returns `s` with comments, string, char and byte literals replaced by spaces."""
    out = list(s)
    n = len(s)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < n:
        c = s[i]
        if c == "/" and s.startswith("//", i):
            j = s.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
            continue
        if c == "/" and s.startswith("/*", i):
            depth, j = 0, i
            while j < n:
                if s.startswith("/*", j):
                    depth += 1
                    j += 2
                elif s.startswith("*/", j):
                    depth -= 1
                    j += 2
                    if depth == 0:
                        break
                else:
                    j += 1
            blank(i, j)
            i = j
            continue
        if c in "bcr" and (i == 0 or not _is_ident_char(s[i - 1])):
            m = _RAW_STR.match(s, i)
            if m:
                close = '"' + m.group(1)
                j = s.find(close, m.end())
                j = n if j < 0 else j + len(close)
                blank(i, j)
                i = j
                continue
        if c == '"':
            j = i + 1
            while j < n:
                if s[j] == "\\":
                    j += 2
                elif s[j] == '"':
                    j += 1
                    break
                else:
                    j += 1
            blank(i, j)
            i = j
            continue
        if c == "'":
            if i + 1 < n and s[i + 1] == "\\":  # '\n', '\'', '\u{1F600}'
                j = s.find("'", i + 3)
                j = n if j < 0 else j + 1
                blank(i, j)
                i = j
                continue
            if i + 2 < n and s[i + 2] == "'":  # 'x'
                blank(i, i + 3)
                i += 3
                continue
            # a lifetime or a label: leave it
        i += 1
    return "".join(out)


def match_close(code: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (in stripped code)."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    opener = code[open_at]
    closer = pairs[opener]
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == opener:
            depth += 1
        elif code[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def _blank_range(code: str, a: int, b: int) -> str:
    return code[:a] + re.sub(r"[^\n]", " ", code[a:b]) + code[b:]


def _split_top_level(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def _test_only(pred: str) -> bool:
    """Whether a `cfg(...)` predicate holds only under `cargo test`."""
    pred = pred.strip()
    if pred == "test":
        return True
    m = re.fullmatch(r"all\s*\((.*)\)", pred, re.S)
    return bool(m) and any(_test_only(p) for p in _split_top_level(m.group(1)))


_CFG_ATTR = re.compile(r"#\s*(!?)\s*\[\s*cfg\s*\(")


def _item_end(code: str, p: int) -> int:
    """End (exclusive) of the item starting at or after `p`, its other attributes included."""
    n = len(code)
    while True:
        while p < n and code[p].isspace():
            p += 1
        m = re.compile(r"#\s*\[").match(code, p)
        if not m:
            break
        p = match_close(code, m.end() - 1) + 1
    depth = 0
    for j in range(p, n):
        ch = code[j]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == ";" and depth == 0:
            return j + 1
        elif ch == "{" and depth == 0:
            return match_close(code, j) + 1
    return n


def remove_test_code(code: str) -> str | None:
    """Blanks items under `#[cfg(test)]`; None when the whole file is `#![cfg(test)]`."""
    pos = 0
    while True:
        m = _CFG_ATTR.search(code, pos)
        if not m:
            return code
        paren = m.end() - 1
        close = match_close(code, paren)
        pred = code[paren + 1 : close]
        bracket_end = code.find("]", close)
        bracket_end = len(code) if bracket_end < 0 else bracket_end + 1
        if not _test_only(pred):
            pos = bracket_end
            continue
        if m.group(1) == "!":
            return None
        end = _item_end(code, bracket_end)
        code = _blank_range(code, m.start(), end)
        pos = end


# --------------------------------------------------------------------------------------------
# The module tree.


@dataclass(eq=False)
class Module:
    crate: str  # "lib", or the binary's name
    path: tuple[str, ...]
    file: "SourceFile"
    parent: "Module | None"
    span: tuple[int, int]  # the part of the file's code that is this module's own
    children: dict[str, "Module"] = field(default_factory=dict)
    aliases: dict[str, "Module"] = field(default_factory=dict)  # `use` of a whole module
    imports: dict[str, tuple["Module", tuple[str, ...]]] = field(default_factory=dict)
    inline: bool = False

    def name(self) -> str:
        p = "::".join(self.path) if self.path else "crate"
        return p if self.crate == "lib" else f"[bin {self.crate}] {p}"

    def ancestors(self):
        m = self.parent
        while m is not None:
            yield m
            m = m.parent

    def is_ancestor_of(self, other: "Module") -> bool:
        return any(a is self for a in other.ancestors())


@dataclass(eq=False)
class SourceFile:
    rel: str
    raw: str
    code: str
    line_starts: list[int]
    inline: list[Module] = field(default_factory=list)  # inline modules, in source order
    module: Module | None = None

    def line(self, pos: int) -> int:
        return bisect_right(self.line_starts, pos)

    def line_text(self, pos: int) -> str:
        lineno = self.line(pos)
        start = self.line_starts[lineno - 1]
        end = self.raw.find("\n", start)
        text = self.raw[start : (len(self.raw) if end < 0 else end)].strip()
        return text if len(text) <= 110 else text[:107] + "..."

    def owner(self, pos: int) -> Module:
        best = self.module
        for m in self.inline:
            if m.span[0] <= pos < m.span[1]:
                best = m  # later ones are nested deeper or elsewhere
        return best


_MOD_DECL = re.compile(r"\bmod\s+(?:r#)?([A-Za-z_]\w*)\s*([;{])")


class Crate:
    def __init__(self, root: Path):
        self.root = root
        self.modules: list[Module] = []
        self.files: list[SourceFile] = []
        self.warnings: list[str] = []
        manifest = tomllib.loads((root / "Cargo.toml").read_text())
        package = manifest.get("package", {}).get("name", "")
        lib = manifest.get("lib", {})
        self.lib_name = lib.get("name", package).replace("-", "_")
        roots: list[tuple[str, Path]] = []
        lib_path = root / lib.get("path", "src/lib.rs")
        if lib_path.is_file():
            roots.append(("lib", lib_path))
        bins = [(b.get("name", package), root / b["path"]) for b in manifest.get("bin", []) if "path" in b]
        if (root / "src/main.rs").is_file():
            bins.append((package, root / "src/main.rs"))
        for p in sorted((root / "src/bin").glob("*.rs")):
            bins.append((p.stem, p))
        for p in sorted((root / "src/bin").glob("*/main.rs")):
            bins.append((p.parent.name, p))
        seen = {lib_path.resolve()} if roots else set()
        for name, path in bins:
            if path.is_file() and path.resolve() not in seen:
                seen.add(path.resolve())
                roots.append((name, path))
        self.has_lib = bool(roots) and roots[0][0] == "lib"
        self.roots: dict[str, Module] = {}
        for crate, path in roots:
            m = self._load(crate, (), path, path.parent, None)
            if m is not None:
                self.roots[crate] = m

    def _load(self, crate, mpath, path: Path, child_dir: Path, parent) -> Module | None:
        raw = path.read_text(encoding="utf-8")
        code = remove_test_code(strip_code(raw))
        if code is None:
            return None
        starts = [0] + [i + 1 for i, ch in enumerate(raw) if ch == "\n"]
        sf = SourceFile(str(path.relative_to(self.root)), raw, code, starts)
        self.files.append(sf)
        mod = Module(crate, mpath, sf, parent, (0, len(code)))
        sf.module = mod
        self.modules.append(mod)
        if parent is not None:
            parent.children[mpath[-1]] = mod
        for m in _MOD_DECL.finditer(code):
            owner = sf.owner(m.start())
            name = m.group(1)
            if m.group(2) == "{":
                end = match_close(code, m.end() - 1)
                child = Module(crate, owner.path + (name,), sf, owner, (m.end() - 1, end + 1), inline=True)
                owner.children[name] = child
                sf.inline.append(child)
                self.modules.append(child)
                continue
            d = child_dir
            for seg in owner.path[len(mpath) :]:
                d = d / seg
            for candidate, its_dir in ((d / f"{name}.rs", d / name), (d / name / "mod.rs", d / name)):
                if candidate.is_file():
                    self._load(crate, owner.path + (name,), candidate, its_dir, owner)
                    break
            else:
                self.warnings.append(f"{sf.rel}:{sf.line(m.start())}: no file for `mod {name};`")
        return mod


# --------------------------------------------------------------------------------------------
# References.

_TOKEN = re.compile(r"\$?(?:r#)?[A-Za-z_]\w*|::|\S")
_USE = re.compile(r"\buse\b(?=\s*[A-Za-z_:{*$])")


@dataclass
class Ref:
    file: SourceFile
    pos: int

    def where(self) -> str:
        return f"{self.file.rel}:{self.file.line(self.pos)}"


def _ident(tok: str) -> str | None:
    if tok[0] == "$":
        return tok if tok == "$crate" else None
    if tok[0].isalpha() or tok[0] == "_":
        return tok[2:] if tok.startswith("r#") else tok
    return None


def parse_use_tree(tokens: list[tuple[str, int]]):
    """Leaves of a use tree: (segments, alias or None, is_glob, offset of the leaf)."""
    leaves = []
    i = 0

    def tree(prefix: tuple[str, ...]) -> None:
        nonlocal i
        if i < len(tokens) and tokens[i][0] == "::":  # `use ::std::...`
            prefix = prefix + ("::",)
            i += 1
        if i >= len(tokens):
            return
        tok, pos = tokens[i]
        if tok == "{":
            i += 1
            while i < len(tokens) and tokens[i][0] != "}":
                if tokens[i][0] == ",":
                    i += 1
                    continue
                tree(prefix)
            i += 1
            return
        if tok == "*":
            i += 1
            leaves.append((prefix, None, True, pos))
            return
        segs: list[str] = []
        start = pos
        while i < len(tokens):
            name = _ident(tokens[i][0])
            if name is None:
                break
            segs.append(name)
            i += 1
            if i + 1 < len(tokens) and tokens[i][0] == "::" and _ident(tokens[i + 1][0]):
                i += 1
                continue
            break
        if i < len(tokens) and tokens[i][0] == "::":
            i += 1
            tree(prefix + tuple(segs))
            return
        alias = None
        if i + 1 < len(tokens) and tokens[i][0] == "as":
            alias = _ident(tokens[i + 1][0]) or tokens[i + 1][0]
            i += 2
        if not segs:  # unparseable: skip a token
            i += 1
            return
        leaves.append((prefix + tuple(segs), alias, False, start))

    while i < len(tokens):
        before = i
        tree(())
        if i == before:
            i += 1
    return leaves


class Analysis:
    def __init__(self, crate: Crate):
        self.crate = crate
        # (from, to) -> references, between modules not nested in each other
        self.edges: dict[tuple[Module, Module], list[Ref]] = {}
        uses: list[tuple[Module, tuple[str, ...], str | None, bool, Ref]] = []
        scan: list[tuple[SourceFile, str]] = []
        for sf in crate.files:
            code = sf.code
            for m in _USE.finditer(sf.code):
                end = sf.code.find(";", m.end())
                end = len(sf.code) if end < 0 else end
                toks = [(t.group(), t.start() + m.end()) for t in _TOKEN.finditer(sf.code[m.end() : end])]
                owner = sf.owner(m.start())
                for segs, alias, glob, pos in parse_use_tree(toks):
                    uses.append((owner, segs, alias, glob, Ref(sf, pos)))
                code = _blank_range(code, m.start(), end)
            scan.append((sf, code))
        # Names imported by `use`: modules become aliases, other items imports. Uses may go
        # through each other (`use crate::store; use store::local;`), so resolve until stable.
        for _ in range(5):
            changed = False
            for owner, segs, alias, glob, ref in uses:
                if glob or not segs or segs[-1] in ("self", "super", "crate") and len(segs) == 1:
                    continue
                got = self.resolve(owner, segs)
                if got is None:
                    continue
                target, rest = got
                name = alias or (rest[-1] if rest else segs[-1] if segs[-1] != "self" else segs[-2])
                if name == "_":
                    continue
                if not rest:
                    if owner.aliases.get(name) is not target:
                        owner.aliases[name] = target
                        changed = True
                elif name not in owner.imports:
                    owner.imports[name] = (target, rest)
                    changed = True
            if not changed:
                break
        for owner, segs, alias, glob, ref in uses:
            got = self.resolve(owner, segs)
            if got is not None:
                self.add(owner, got[0], got[1], ref)
        for sf, code in scan:
            toks = [(t.group(), t.start()) for t in _TOKEN.finditer(code)]
            k = 0
            while k < len(toks):
                first = _ident(toks[k][0])
                if (
                    first is None
                    or (k > 0 and toks[k - 1][0] == "::")
                    or k + 2 >= len(toks)
                    or toks[k + 1][0] != "::"
                    or _ident(toks[k + 2][0]) is None
                ):
                    k += 1
                    continue
                segs = [first]
                j = k + 1
                while j + 1 < len(toks) and toks[j][0] == "::" and _ident(toks[j + 1][0]):
                    segs.append(_ident(toks[j + 1][0]))
                    j += 2
                owner = sf.owner(toks[k][1])
                got = self.resolve(owner, tuple(segs), in_code=True)
                if got is not None:
                    self.add(owner, got[0], got[1], Ref(sf, toks[k][1]))
                k = j

    def resolve(self, owner: Module, segs: tuple[str, ...], in_code: bool = False):
        """(module, rest of the path) that `segs`, written in `owner`, names; None if outside."""
        first = segs[0]
        if first == "::":
            return None
        if first in ("crate", "$crate"):
            cur = self.crate.roots.get(owner.crate)
        elif first == "self":
            cur = owner
        elif first == "super":
            cur = owner.parent
        elif owner.crate != "lib" and first == self.crate.lib_name and self.crate.has_lib:
            cur = self.crate.roots["lib"]
        elif first in owner.aliases:
            cur = owner.aliases[first]
        elif first in owner.children:
            cur = owner.children[first]
        else:
            return None  # another crate, a type, a variable
        i = 1
        while cur is not None and i < len(segs) and segs[i] == "super":
            cur = cur.parent
            i += 1
        if cur is None:
            return None
        while i < len(segs):
            seg = segs[i]
            if seg == "self":
                i += 1
                continue
            nxt = cur.children.get(seg)
            if nxt is None and (cur is owner or cur.is_ancestor_of(owner)):
                nxt = cur.aliases.get(seg)  # a module the ancestor imported: `super::local::x`
            if nxt is None:
                break
            cur = nxt
            i += 1
        return cur, tuple(segs[i:])

    def add(self, src: Module, dst: Module, rest: tuple[str, ...], ref: Ref, depth: int = 0) -> None:
        if dst.crate != src.crate:
            return
        if dst is src or dst.is_ancestor_of(src):
            # `super::Engine`, `crate::Result`: the item may be one that the ancestor imported.
            if dst is not src and rest and rest[0] in dst.imports and depth < 8:
                target, more = dst.imports[rest[0]]
                self.add(src, target, more + rest[1:], ref, depth + 1)
            return
        if src.is_ancestor_of(dst):
            return  # a parent naming its own descendants
        refs = self.edges.setdefault((src, dst), [])
        if not any(r.file is ref.file and r.file.line(r.pos) == ref.file.line(ref.pos) for r in refs):
            refs.append(ref)

    def sibling_edges(self):
        """(parent, a, b) -> [(from, to, refs)]: edges lifted to children of the common ancestor."""
        out: dict[tuple[Module, Module, Module], list] = {}
        for (src, dst), refs in self.edges.items():
            up = [src] + list(src.ancestors())
            down = [dst] + list(dst.ancestors())
            common = next(m for m in up if any(m is d for d in down))
            a = up[[i for i, m in enumerate(up) if m is common][0] - 1]
            b = down[[i for i, m in enumerate(down) if m is common][0] - 1]
            out.setdefault((common, a, b), []).append((src, dst, refs))
        return out

    def cycles(self):
        """Strongly connected components of two or more siblings, with their edges."""
        sib = self.sibling_edges()
        graphs: dict[Module, dict[Module, list[Module]]] = {}
        for parent, a, b in sib:
            g = graphs.setdefault(parent, {})
            g.setdefault(a, []).append(b)
            g.setdefault(b, [])
        found = []
        for parent, g in graphs.items():
            for comp in _tarjan(g):
                if len(comp) > 1:
                    members = set(comp)
                    edges = [(a, b, sib[(parent, a, b)]) for a in comp for b in g[a] if b in members]
                    found.append((parent, comp, edges))
        found.sort(key=lambda c: [m.name() for m in c[1]])
        return found


def _tarjan(g: dict[Module, list[Module]]) -> list[list[Module]]:
    index: dict[Module, int] = {}
    low: dict[Module, int] = {}
    stack: list[Module] = []
    on: set[Module] = set()
    comps: list[list[Module]] = []

    def visit(v: Module) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w is v:
                    break
            comps.append(sorted(comp, key=Module.name))

    for v in sorted(g, key=Module.name):
        if v not in index:
            visit(v)
    return comps


def _simple_cycles(comp: list[Module], edges, limit: int = 50) -> list[list[Module]]:
    """The component's elementary cycles (at most `limit`), each from its first module in name order."""
    succ: dict[Module, list[Module]] = {}
    for a, b, _ in edges:
        succ.setdefault(a, []).append(b)
    order = {m: i for i, m in enumerate(comp)}
    found: list[list[Module]] = []

    def walk(start: Module, path: list[Module]) -> None:
        for w in sorted(succ.get(path[-1], []), key=Module.name):
            if len(found) >= limit:
                return
            if w is start:
                found.append(path + [start])
            elif order[w] > order[start] and w not in path:
                walk(start, path + [w])

    for start in comp:
        walk(start, [start])
    found.sort(key=lambda c: (len(c), [m.name() for m in c]))
    return found


def run(root: Path, all_refs: bool = False, show_edges: bool = False) -> int:
    crate = Crate(root)
    for w in crate.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not crate.roots:
        print(f"error: no crate root (src/lib.rs, src/main.rs) under {root}", file=sys.stderr)
        return 2
    an = Analysis(crate)
    if show_edges:
        for (src, dst), refs in sorted(an.edges.items(), key=lambda e: (e[0][0].name(), e[0][1].name())):
            print(f"{src.name()} -> {dst.name()}  ({refs[0].where()}, {len(refs)} reference(s))")
    cycles = an.cycles()
    if not cycles:
        print(f"no module cycles ({len(crate.modules)} modules, {len(an.edges)} edges)")
        return 0
    for parent, comp, edges in cycles:
        loops = _simple_cycles(comp, edges)
        print(f"module cycle among {', '.join(m.name() for m in comp)}:")
        for loop in loops:
            print(f"  {' -> '.join(m.name() for m in loop)}")
        print("  made by these references (a child's reference counts for its ancestor):")
        for a, b, via in sorted(edges, key=lambda e: (e[0].name(), e[1].name())):
            print(f"  {a.name()} -> {b.name()}:")
            for src, dst, refs in sorted(via, key=lambda v: (v[0].name(), v[1].name())):
                shown = refs if all_refs else refs[:1]
                label = "" if (src is a and dst is b) else f"{src.name()} -> {dst.name()}: "
                for r in shown:
                    print(f"    {label}{r.where()}: {r.file.line_text(r.pos)}")
                if len(refs) > len(shown):
                    print(f"    {label}(and {len(refs) - len(shown)} more: --all-refs lists them)")
    print(
        f"{len(cycles)} module cycle(s) ({len(crate.modules)} modules, {len(an.edges)} edges): make each "
        "dependency go one way (move what both need to a module both can use)"
    )
    return 1


# --------------------------------------------------------------------------------------------
# Self-test: tiny fake crates with a known verdict.

_CARGO = '[package]\nname = "fake"\nversion = "0.1.0"\nedition = "2024"\n'

SELF_TESTS: list[tuple] = [
    # (name, files, expected cycles as sets of module names, {"a -> b": "file:line"} for edges
    # in those cycles[, {"a -> b": "file:line" or None} for module edges present or absent])
    (
        "cycle a <-> b through use crate::",
        {
            "src/lib.rs": "pub mod a;\npub mod b;\n",
            "src/a.rs": "use crate::b::B;\npub struct A(pub B);\npub fn h() {}\n",
            "src/b.rs": "pub struct B;\n\npub fn g() {\n    crate::a::h();\n}\n",
        },
        [{"a", "b"}],
        {"a -> b": "src/a.rs:1", "b -> a": "src/b.rs:4"},
    ),
    (
        "cycle through super::super:: (lifted to the siblings p::a, p::b)",
        {
            "src/lib.rs": "pub mod p;\n",
            "src/p/mod.rs": "pub mod a;\npub mod b;\n",
            "src/p/a/mod.rs": "pub mod deep;\n",
            "src/p/a/deep.rs": "pub struct X;\npub fn f() {\n    super::super::b::thing();\n}\n",
            "src/p/b.rs": "pub fn thing() {}\npub fn k() -> crate::p::a::deep::X { crate::p::a::deep::X }\n",
        },
        [{"p::a", "p::b"}],
        {"p::a -> p::b": "src/p/a/deep.rs:3", "p::b -> p::a": "src/p/b.rs:2"},
    ),
    (
        "use groups: use crate::{a::x, b} and use crate::d::{self, e::{F}}",
        {
            "src/lib.rs": "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
            "src/a.rs": "use crate::c::Y;\npub fn x(_: Y) {}\n",
            "src/b.rs": "pub struct Q;\nuse crate::d::{\n    self,\n    e::{F},\n};\n",
            "src/c.rs": "use crate::{a::x, b};\npub struct Y;\npub fn z() -> b::Q { b::Q }\n",
            "src/d/mod.rs": "pub mod e;\n",
            "src/d/e.rs": "pub struct F;\nuse crate::b::Q;\n",
        },
        [{"a", "c"}, {"b", "d"}],
        {"c -> a": "src/c.rs:1", "b -> d": "src/b.rs:4", "d -> b": "src/d/e.rs:2"},
    ),
    (
        "engine registry: parent names its children, children use super::Engine",
        {
            "src/lib.rs": "pub mod archive;\npub mod engine;\npub use engine::Engine;\n",
            "src/archive.rs": "pub enum Format { Native }\n",
            "src/engine/mod.rs": (
                "pub mod postgres;\npub mod sqlite;\nuse crate::archive::Format;\n"
                "pub use sqlite::Sqlite;\n"
                "pub trait Engine { fn format(&self) -> Format; }\n"
                "pub fn open(s: &str) -> Box<dyn Engine> {\n"
                "    if s.ends_with(\".db\") { Box::new(self::sqlite::Sqlite) } "
                "else { Box::new(postgres::Postgres) }\n}\n"
            ),
            "src/engine/sqlite/mod.rs": (
                "pub mod dump;\nuse super::Engine;\npub struct Sqlite;\n"
                "impl Engine for Sqlite {\n    fn format(&self) -> super::Format { dump::native() }\n}\n"
                "pub fn again() -> crate::engine::sqlite::Sqlite { Sqlite }\n"
            ),
            "src/engine/sqlite/dump.rs": "pub fn native() -> crate::archive::Format { super::super::Format::Native }\n",
            "src/engine/postgres.rs": (
                "pub struct Postgres;\n"
                "impl crate::engine::Engine for Postgres {\n"
                "    fn format(&self) -> crate::archive::Format { crate::archive::Format::Native }\n}\n"
            ),
        },
        [],
        {},
        {  # module edges: present (file:line of a reference) or absent (None)
            "engine -> engine::sqlite": None,
            "engine::sqlite -> engine": None,
            "engine::postgres -> engine": None,
            "engine::sqlite::dump -> engine::sqlite": None,
            "engine::sqlite -> archive": "src/engine/sqlite/mod.rs:5",  # super::Format, imported by engine
            "engine::sqlite::dump -> archive": "src/engine/sqlite/dump.rs:1",
            "engine -> archive": "src/engine/mod.rs:3",
        },
    ),
    (
        "paths in comments and strings are not references",
        {
            "src/lib.rs": "pub mod a;\npub mod b;\n",
            "src/a.rs": "use crate::b::B;\npub fn h() {}\n",
            "src/b.rs": (
                "//! Unlike [`crate::a::h`], this one\n"
                "/// calls crate::a::h() /* and crate::a::x */\n"
                "pub struct B;\n"
                "/* crate::a::y /* nested crate::a::z */ still crate::a::w */\n"
                "pub fn f<'a>(s: &'a str) -> &'a str {\n"
                "    let _q = '\"';\n"
                "    let _e = '\\'';\n"
                "    let _t = \"use crate::a::h; \\\" crate::a::h\";\n"
                "    let _r = r#\"crate::a::h \"quoted\" \"#;\n"
                "    let _b = br\"crate::a::h\";\n"
                "    s\n}\n"
            ),
        },
        [],
        {},
    ),
    (
        "references inside #[cfg(test)] are not dependencies",
        {
            "src/lib.rs": "pub mod a;\npub mod b;\n",
            "src/a.rs": "use crate::b::B;\npub fn h() {}\n",
            "src/b.rs": (
                "pub struct B;\n"
                "#[cfg(test)]\nuse crate::a::h;\n"
                "#[cfg(test)]\n#[allow(dead_code)]\nfn helper() { crate::a::h() }\n"
                "#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::a;\n"
                "    #[test]\n    fn t() { crate::a::h(); a::h(); if true { h() } }\n}\n"
                "#[cfg(test)]\nmod more;\n"
            ),
        },
        [],
        {},
    ),
    (
        "an inline module and an imported alias close a cycle; the binary is its own crate",
        {
            "Cargo.toml": _CARGO + '\n[lib]\npath = "src/lib.rs"\n',
            "src/lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
            "src/a.rs": "pub mod inner {\n    pub fn f() { super::super::b::g() }\n}\n",
            "src/b.rs": "pub fn g() {}\npub fn h() { crate::c::k() }\n",
            "src/c.rs": "use crate::a;\npub fn k() { a::inner::f() }\n",
            "src/main.rs": "mod cli;\nfn main() { fake::c::k(); cli::x::run() }\n",
            "src/cli/mod.rs": "pub mod x;\npub mod y;\n",
            "src/cli/x.rs": "use fake::b;\npub fn run() { b::g(); crate::cli::y::go() }\npub fn back() {}\n",
            "src/cli/y.rs": "pub fn go() { super::x::back() }\n",
        },
        [{"a", "b", "c"}, {"[bin fake] cli::x", "[bin fake] cli::y"}],
        {
            "a -> b": "src/a.rs:2",
            "c -> a": "src/c.rs:2",
            "[bin fake] cli::x -> [bin fake] cli::y": "src/cli/x.rs:2",
            "[bin fake] cli::y -> [bin fake] cli::x": "src/cli/y.rs:1",
        },
    ),
    (
        "a three-module cycle through a deeper module (guard -> runner -> backup -> store)",
        {
            "src/lib.rs": "pub mod backup;\npub mod runner;\npub mod store;\n",
            "src/store/mod.rs": "pub mod artifacts;\n",
            "src/store/artifacts/mod.rs": "pub mod guard;\npub fn upload() {}\n",
            "src/store/artifacts/guard.rs": "use crate::runner::Runner;\npub fn check(_: &Runner) {}\n",
            "src/runner.rs": "pub struct Runner;\nimpl Runner { pub fn say(&self) { crate::backup::human(); } }\n",
            "src/backup.rs": "pub fn human() {}\npub fn run() { crate::store::artifacts::upload() }\n",
        },
        [{"backup", "runner", "store"}],
        {"store -> runner": "src/store/artifacts/guard.rs:1", "backup -> store": "src/backup.rs:2"},
    ),
]


def self_test() -> int:
    failures = 0
    for name, files, want_cycles, want_refs, *more in SELF_TESTS:
        want_edges = more[0] if more else {}
        with tempfile.TemporaryDirectory(prefix="module-cycles-") as tmp:
            root = Path(tmp)
            files = {"Cargo.toml": _CARGO, **files}
            for rel, text in files.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text)
            problems = []
            crate = Crate(root)
            an = Analysis(crate)
            got = an.cycles()
            got_sets = sorted(sorted(m.name() for m in comp) for _, comp, _ in got)
            if got_sets != sorted(sorted(c) for c in want_cycles):
                problems.append(f"cycles {got_sets}, expected {sorted(sorted(c) for c in want_cycles)}")
            if crate.warnings:
                problems.append(f"warnings {crate.warnings}")
            lifted = {}
            for _, _, edges in got:
                for a, b, via in edges:
                    lifted[f"{a.name()} -> {b.name()}"] = {r.where() for _, _, refs in via for r in refs}
            for edge, where in want_refs.items():
                if where not in lifted.get(edge, set()):
                    problems.append(f"edge {edge}: references {sorted(lifted.get(edge, []))}, expected {where}")
            edges = {f"{a.name()} -> {b.name()}": {r.where() for r in refs} for (a, b), refs in an.edges.items()}
            for edge, where in want_edges.items():
                if where is None and edge in edges:
                    problems.append(f"edge {edge} should not count: {sorted(edges[edge])}")
                elif where is not None and where not in edges.get(edge, set()):
                    problems.append(f"edge {edge}: references {sorted(edges.get(edge, []))}, expected {where}")
            # The command itself: its exit code and its last line.
            proc = subprocess.run(
                [sys.executable, __file__, "--root", str(root)], capture_output=True, text=True
            )
            want_code = 1 if want_cycles else 0
            last = proc.stdout.strip().splitlines()[-1:] or [""]
            if proc.returncode != want_code:
                problems.append(f"exit code {proc.returncode}, expected {want_code}: {proc.stderr.strip()}")
            if not want_cycles and not last[0].startswith("no module cycles ("):
                problems.append(f"last line {last[0]!r}")
        if problems:
            failures += 1
            print(f"FAIL  {name}")
            for p in problems:
                print(f"      {p}")
        else:
            print(f"ok    {name}")
    print(f"self-test: {len(SELF_TESTS) - failures} passed, {failures} failed")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Fails (exit 1) when the crate's modules depend on each other in a cycle.",
        epilog="See the docstring at the top of this script for what counts as a dependency.",
    )
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="the crate's directory (default: this repository)")
    ap.add_argument("--all-refs", action="store_true", help="list every reference of each edge in a cycle")
    ap.add_argument("--edges", action="store_true", help="also print every dependency between modules")
    ap.add_argument("--self-test", action="store_true", help="check the checker on small fake crates")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    return run(args.root, args.all_refs, args.edges)


if __name__ == "__main__":
    sys.exit(main())
