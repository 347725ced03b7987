"""Make lava-nc 0.10.0 importable on Python >= 3.11.

Lava 0.10.0 (archived upstream, so it will never be fixed there) declares dataclass
fields in ``lava/magma/compiler/var_model.py`` whose defaults are *instances* of other
dataclasses, e.g. ``x: ByteEncoder = ByteEncoder()``. Python 3.11 made dataclasses reject
unhashable defaults ("mutable default ... use default_factory"), so ``import lava.magma...``
fails. This module installs a :mod:`importlib` meta-path finder that rewrites exactly
those class-level ``name: T = T()`` defaults into ``dataclasses.field(default_factory=T)``
in that one module's source before it executes. Nothing on disk is modified, and Lava's
runtime processes (forked) inherit the already-imported, fixed module.

Call :func:`install` before the first ``import lava``; :func:`import_lava` does both and
turns a missing lava into a one-line install hint.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType

from snn2hw.common.errors import MissingDependencyError

PATCHED_MODULE = "lava.magma.compiler.var_model"
INSTALL_HINT = (
    "Lava is not installed: run `snn2hw install-lava` (lava-nc 0.10.0 needs pip's "
    "--no-deps --ignore-requires-python on Python 3.11; `make setup` does it too)."
)


class LavaMissingError(MissingDependencyError):
    """Raised when a Lava backend is requested but lava-nc is not importable."""


def rewrite_instance_defaults(tree: ast.Module) -> bool:
    """Turn dataclass-instance defaults in ``tree`` into default factories, in place.

    Only class-body annotated assignments whose value is a no-argument call of a bare
    name (``x: Foo = Foo()``) are rewritten; everything else is left untouched.
    Returns whether anything changed.
    """
    changed = False
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for stmt in cls.body:
            value = getattr(stmt, "value", None)
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and not value.args
                and not value.keywords
            ):
                stmt.value = ast.Call(
                    func=ast.Attribute(
                        value=ast.Name(id="_snn2hw_dataclasses", ctx=ast.Load()),
                        attr="field",
                        ctx=ast.Load(),
                    ),
                    args=[],
                    keywords=[ast.keyword(arg="default_factory", value=value.func)],
                )
                changed = True
    if changed:
        # After the docstring and `from __future__` imports, which must stay first.
        pos = 0
        while pos < len(tree.body) and (
            (isinstance(tree.body[pos], ast.ImportFrom) and tree.body[pos].module == "__future__")
            or (
                isinstance(tree.body[pos], ast.Expr)
                and isinstance(tree.body[pos].value, ast.Constant)
            )
        ):
            pos += 1
        tree.body.insert(pos, ast.parse("import dataclasses as _snn2hw_dataclasses").body[0])
        ast.fix_missing_locations(tree)
    return changed


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # default module creation

    def exec_module(self, module: ModuleType) -> None:
        with open(self.origin, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), filename=self.origin)
        rewrite_instance_defaults(tree)
        code = compile(tree, self.origin, "exec")
        exec(code, module.__dict__)  # noqa: S102 - executing lava's own (rewritten) source


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # type: ignore[override]
        if fullname != PATCHED_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_PatchingLoader(spec.origin)
        )


def needs_patch() -> bool:
    """True on Python versions whose dataclasses reject instance defaults (3.11+)."""
    return sys.version_info >= (3, 11)


def install() -> None:
    """Install the finder (idempotent). Must run before ``lava.magma.compiler.var_model``
    is first imported; if it already was, this is a no-op."""
    if not needs_patch():
        return
    if any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _VarModelFinder())


def _import_lava_runtime() -> None:
    """Import Lava's multiprocessing layer without letting it change the process.

    That module calls ``mp.set_start_method('fork')`` at import time, which would switch the
    whole program to fork (unsafe after CUDA initialisation or with threads) and fails with
    "context has already been set" once anything fixed the method. Here the call is ignored;
    :func:`lava_start_method` gives Lava fork only while it runs."""
    import multiprocessing as mp

    original = mp.set_start_method
    mp.set_start_method = lambda method=None, force=False: None  # type: ignore[assignment]
    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    finally:
        mp.set_start_method = original  # type: ignore[assignment]


@contextlib.contextmanager
def lava_start_method() -> Iterator[None]:
    """Run Lava's runtime (compile, run, stop) inside this block: its actor processes are
    ``multiprocessing.Process`` objects of the default context and need fork, so the default
    context uses fork here and whatever it used before afterwards. ``multiprocessing`` has no
    public way to scope the default start method, hence its one private attribute."""
    import multiprocessing as mp

    default = mp.context._default_context
    saved = default._actual_context
    default._actual_context = mp.get_context("fork")
    try:
        yield
    finally:
        default._actual_context = saved


def import_lava() -> ModuleType:
    """Install the fix and import lava, or raise :class:`LavaMissingError` with a hint."""
    install()
    try:
        import lava  # noqa: F401
        import lava.magma.compiler.var_model  # noqa: F401

        _import_lava_runtime()
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "lava":
            raise LavaMissingError(INSTALL_HINT) from None
        raise
    return sys.modules["lava"]


def lava_available() -> bool:
    """Whether lava-nc can be imported (with the fix applied)."""
    try:
        import_lava()
    except LavaMissingError:
        return False
    return True
