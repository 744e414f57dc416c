#!/usr/bin/env bash
# Fails when a crate has a module cycle, naming it.
#
# For every crate (checks, harness, sim; or the src/ folders given as arguments) it reads the
# `crate::...`, `super::...` and `self::...` paths in each module's code (comments left out),
# resolves each to the module it names, and keeps the edges between siblings: between the
# top-level modules of the crate, and between the submodules of each folder (a child using
# its own parent, like `super::TestEnv`, is not an edge). Any strongly connected set of
# siblings is a cycle: printed as `crate: a -> b -> a` and the script exits 1.
#
#   bash scripts/check-cycles.sh            # every crate
#   bash scripts/check-cycles.sh sim/src    # one crate
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  set -- checks/src harness/src sim/src
fi
exec python3 - "$@" <<'PY'
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(r"\b(crate|super|self)((?:::" + IDENT + r")+|::\{)")


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    mods = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, name), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            mods[tuple(parts)] = os.path.join(root, name)
    return mods


def strip_comments(text):
    out = []
    for line in text.splitlines():
        code = line.split("//", 1)[0]
        out.append(code)
    return "\n".join(out)


def brace_heads(text, start):
    """The first segment of each item of a `{...}` group starting at text[start] == '{'."""
    depth, i, item, heads = 0, start, "", []
    while i < len(text):
        c = text[i]
        if c == "{":
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif c == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        if depth == 1 and c == ",":
            heads.append(item)
            item = ""
        elif depth >= 1:
            item += c
        i += 1
    result = []
    for h in heads:
        m = re.match(r"\s*(" + IDENT + r")", h)
        if m:
            result.append(m.group(1))
    return result


def references(module, text):
    """Absolute module paths (tuples) that the module's code names."""
    refs = []
    for m in PATH_RE.finditer(text):
        kind, rest = m.group(1), m.group(2)
        if kind == "crate":
            base = ()
        elif kind == "super":
            base = module[:-1]
        else:
            base = module
        if rest == "::{":
            for head in brace_heads(text, m.end() - 1):
                refs.append(base + (head,))
            continue
        segs = tuple(s for s in rest.split("::") if s)
        # `super::super::x`
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
        refs.append(base + segs)
    return refs


def resolve(path, mods):
    """The longest prefix of path that is a module."""
    for n in range(len(path), -1, -1):
        if path[:n] in mods:
            return path[:n]
    return ()


def sibling_edge(src, dst):
    """(parent, from_child, to_child) when src and dst sit under different children of
    their common ancestor; None when one contains the other."""
    n = 0
    while n < len(src) and n < len(dst) and src[n] == dst[n]:
        n += 1
    if n == len(src) or n == len(dst):
        return None
    return src[:n], src[n], dst[n]


def cycles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def one_cycle(comp, edges):
    """A readable path a -> ... -> a inside one component."""
    start = comp[0]
    members = set(comp)
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, ())):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp + [start]


failed = False
for src in sys.argv[1:]:
    parts = src.rstrip("/").split("/")
    crate = parts[-2] if len(parts) > 1 and parts[-1] == "src" else parts[-1]
    mods = modules(src)
    groups = {}  # parent module -> {child: {child, ...}}
    evidence = {}
    for module, path in sorted(mods.items()):
        with open(path, encoding="utf-8") as f:
            text = strip_comments(f.read())
        for ref in references(module, text):
            target = resolve(ref, mods)
            edge = sibling_edge(module, target)
            if edge is None:
                continue
            parent, a, b = edge
            groups.setdefault(parent, {}).setdefault(a, set()).add(b)
            evidence.setdefault((parent, a, b), path)
    found = 0
    for parent, edges in sorted(groups.items()):
        nodes = set(edges) | {b for bs in edges.values() for b in bs}
        for comp in cycles(nodes, edges):
            found += 1
            cycle = one_cycle(comp, edges)
            prefix = "::".join(parent)
            names = [f"{prefix}::{c}" if prefix else c for c in cycle]
            print(f"{crate}: module cycle: {' -> '.join(names)}")
            if len(comp) > len(cycle) - 1:
                print(f"    (all of {', '.join(comp)} reach each other)")
            for a, b in zip(cycle, cycle[1:]):
                print(f"    {a} -> {b} (e.g. in {evidence[(parent, a, b)]})")
    if found:
        failed = True
    else:
        edge_count = sum(len(bs) for edges in groups.values() for bs in edges.values())
        print(f"{crate}: no module cycle ({len(mods)} modules, {edge_count} sibling edges)")
sys.exit(1 if failed else 0)
PY
