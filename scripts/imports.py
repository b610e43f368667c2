"""The internal import structure of the hubmem package, read statically (ast; nothing is imported).

For each module: the hubmem modules it imports at module level (run when it is imported; top-level
``if``/``try`` blocks and class bodies included), those it imports inside functions (run when the
function is called: the lazy imports), and those under ``if TYPE_CHECKING:`` (never run). Then a
summary: modules, edges, levels (the longest chain of module-level imports, counted in modules), and
import cycles, both among module-level imports (a cycle there can fail at import time) and once
function-level imports are counted too.

    python -m scripts.imports                 # the working tree
    python -m scripts.imports --rev edda2ec^  # any commit, read with git show (no checkout needed)
    python -m scripts.imports --summary       # the summary only

Standard library only, and it never imports the package it reads, so it works on any revision.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "hubmem"
KINDS = ("module", "function", "typing")  # where an import statement sits (see the docstring)


@dataclass
class Module:
    name: str  # dotted, e.g. hubmem.hub.fetch
    is_package: bool  # an __init__.py
    imports: dict[str, dict[str, set[str]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    # kind -> imported module -> the functions importing it ("" at module level)


def sources_from_tree(root: Path) -> dict[str, str]:
    """{path relative to root: source} of every .py file of the package in a directory."""
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((root / PACKAGE).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def sources_from_git(rev: str, repo: Path) -> dict[str, str]:
    """The same, as of a git revision."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout

    paths = [
        p for p in git("ls-tree", "-r", "--name-only", rev, "--", PACKAGE).splitlines() if p.endswith(".py")
    ]
    return {p: git("show", f"{rev}:{p}") for p in sorted(paths)}


def module_name(path: str) -> tuple[str, bool]:
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, str, str]]:
    """(statement, kind, enclosing function) for every import in a module."""

    def walk(
        node: ast.AST, kind: str, function: str
    ) -> Iterator[tuple[ast.Import | ast.ImportFrom, str, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, kind, function
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                name = getattr(child, "name", "<lambda>")
                inner = f"{function}.{name}" if function else name
                yield from walk(child, "typing" if kind == "typing" else "function", inner)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), "typing", function)
                for statement in child.orelse:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), kind, function)
            else:
                yield from walk(child, kind, function)

    yield from walk(tree, "module", "")


def _targets(statement: ast.Import | ast.ImportFrom, module: Module, known: set[str]) -> Iterable[str]:
    """The package's modules an import statement loads (the most specific module each name resolves to)."""

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    if isinstance(statement, ast.Import):
        for alias in statement.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                target = resolve(alias.name)
                if target:
                    yield target
        return
    if statement.level:  # relative: from the module's own package upwards
        base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        base = base[: len(base) - (statement.level - 1)]
        source = ".".join(base + ([statement.module] if statement.module else []))
    else:
        source = statement.module or ""
    if source != PACKAGE and not source.startswith(PACKAGE + "."):
        return
    for alias in statement.names:
        submodule = f"{source}.{alias.name}"
        target = submodule if submodule in known else resolve(source)  # `from pkg import module` or a name
        if target:
            yield target


def read_modules(sources: dict[str, str]) -> dict[str, Module]:
    modules = {}
    for path in sources:
        name, is_package = module_name(path)
        modules[name] = Module(name, is_package)
    known = set(modules)
    for path, source in sources.items():
        module = modules[module_name(path)[0]]
        for statement, kind, function in _import_statements(ast.parse(source, filename=path)):
            for target in _targets(statement, module, known):
                if target != module.name:
                    module.imports[kind].setdefault(target, set()).add(function)
    return modules


def graph(modules: dict[str, Module], kinds: tuple[str, ...]) -> dict[str, set[str]]:
    return {n: {t for k in kinds for t in m.imports[k]} for n, m in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth <= number of modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: (-len(c), c))


def longest_chain(edges: dict[str, set[str]]) -> list[str]:
    """The longest import chain (a -> b -> ... : a imports b), modules of one cycle counted once each."""
    members = {v: frozenset([v]) for v in edges}
    for component in cycles(edges):
        for v in component:
            members[v] = frozenset(component)
    best: dict[frozenset[str], list[str]] = {}

    def chain(group: frozenset[str]) -> list[str]:
        if group not in best:
            best[group] = []  # a guard; the condensed graph has no cycles
            nexts = {members[w] for v in group for w in edges[v]} - {group}
            tail = max((chain(g) for g in sorted(nexts, key=sorted)), key=len, default=[])
            best[group] = sorted(group) + tail
        return best[group]

    return max((chain(g) for g in sorted(set(members.values()), key=sorted)), key=len, default=[])


def edge_count(edges: dict[str, set[str]]) -> int:
    return sum(len(targets) for targets in edges.values())


def short(name: str) -> str:
    return name[len(PACKAGE) + 1 :] if name.startswith(PACKAGE + ".") else name


def report(modules: dict[str, Module], label: str, summary_only: bool) -> str:
    lines = []
    if not summary_only:
        for name in sorted(modules):
            m = modules[name]
            lines.append(name + (" (package)" if m.is_package else ""))
            for kind, heading in (
                ("module", "module level"),
                ("function", "in functions"),
                ("typing", "typing only"),
            ):
                imported = m.imports[kind]
                if not imported:
                    continue
                if kind == "module":
                    text = ", ".join(short(t) for t in sorted(imported))
                else:
                    text = ", ".join(
                        f"{short(t)} ({', '.join(sorted(f or '<module>' for f in imported[t]))})"
                        for t in sorted(imported)
                    )
                lines.append(f"  {heading + ':':<14} {text}")
        lines.append("")
    runtime = graph(modules, ("module",))
    lazy = graph(modules, ("function",))
    combined = graph(modules, ("module", "function"))
    chain = longest_chain(runtime)
    packages = sum(m.is_package for m in modules.values())
    module_cycles, all_cycles = cycles(runtime), cycles(combined)
    lines += [
        f"summary of {label}:",
        f"  modules: {len(modules)} ({packages} package{'' if packages == 1 else 's'})",
        f"  edges: {edge_count(runtime)} module level, {edge_count(lazy)} in functions, "
        f"{edge_count(combined)} distinct in all, {edge_count(graph(modules, ('typing',)))} typing only",
        f"  levels (longest module-level chain): {len(chain)}: {' -> '.join(short(n) for n in chain)}",
        f"  levels counting function-level imports: {len(longest_chain(combined))}",
        "  cycles at module level: "
        + ("; ".join(" <-> ".join(short(n) for n in c) for c in module_cycles) or "none"),
        "  cycles with function-level imports: "
        + ("; ".join(" <-> ".join(short(n) for n in c) for c in all_cycles) or "none"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a git revision to read instead of the working tree")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    parser.add_argument("--summary", action="store_true", help="print the summary only")
    args = parser.parse_args(argv)
    sources = sources_from_git(args.rev, args.root) if args.rev else sources_from_tree(args.root)
    if not sources:
        print(f"no {PACKAGE}/*.py found", file=sys.stderr)
        return 1
    label = f"{PACKAGE} at {args.rev}" if args.rev else f"{PACKAGE} in {args.root}"
    print(report(read_modules(sources), label, args.summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
