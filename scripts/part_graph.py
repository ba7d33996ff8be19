"""Print the import graph between the parts of src/passpost; exit 1 on a cycle.

A part is a sub-package or a top-level module of ``passpost``. Every import counts, inside
functions too, except under ``if TYPE_CHECKING:``. Also fails when ``WalletPass`` is not
defined in ``passpost/passes/``. Usage: ``python scripts/part_graph.py [src]``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

Graph = dict[str, dict[str, set[str]]]
IGNORED = {"__init__", "__main__", "migrations"}


def part_of(module: str) -> str | None:
    """``passpost.x.y`` → ``x``; None for anything outside passpost."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[0] == "passpost" else None


def imported_modules(tree: ast.Module) -> Iterator[str]:
    """Every absolute module (and ``module.name``) a file imports, TYPE_CHECKING excluded."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def build_graph(root: Path) -> Graph:
    """part → imported part → the files that import it."""
    parts = {p.stem for p in root.glob("*.py")} | {p.name for p in root.iterdir() if p.is_dir()}
    graph: Graph = {}
    for file in sorted(root.rglob("*.py")):
        me = part_of(".".join(file.relative_to(root.parent).with_suffix("").parts))
        if me is None or me in IGNORED:
            continue
        for module in imported_modules(ast.parse(file.read_text())):
            other = part_of(module)
            if other and other != me and other in parts and other not in IGNORED:
                where = str(file.relative_to(root.parent.parent))
                graph.setdefault(me, {}).setdefault(other, set()).add(where)
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one part (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "src") / "passpost"
    graph = build_graph(root)
    for part in sorted(graph):
        print(f"{part} -> {', '.join(sorted(graph[part]))}")
    knots = cycles(graph)
    for knot in knots:
        print("cycle:", " <-> ".join(knot))
        for a in knot:
            for b in knot:
                if b in graph.get(a, {}):
                    print(f"   {a} -> {b}: {', '.join(sorted(graph[a][b])[:3])}")
    homes = [
        str(p.relative_to(root.parent.parent))
        for p in root.rglob("*.py")
        if "class WalletPass" in p.read_text()
    ]
    entity_ok = bool(homes) and all("/passes/" in h for h in homes)
    print(f"cycles: {len(knots)}; WalletPass defined in: {', '.join(homes) or 'nowhere'}")
    return 0 if not knots and entity_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
