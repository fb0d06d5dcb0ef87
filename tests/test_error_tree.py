"""One exception root: every error class amzigo-lab defines derives from `AmzigoError`, no two
share a name, and each appears in the tree drawn in `amzigo_lab.errors`' docstring (so the
CLI's one `handle_errors` decorator and the gateway's one `except AmzigoError` see them all).

Read from the source (no import of every module): a class is an error when one of its bases is
a built-in exception or another error class of the package.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import amzigo_lab
import amzigo_lab.errors

PACKAGE = Path(amzigo_lab.__file__).parent
#: Errors that are not ours on purpose: the sandbox plays Amazon (its errors are Amazon's
#: answers), and a tornado HTTP error is an HTTP response of the Voila server.
NOT_OURS = {"sandbox"}
THIRD_PARTY = {"NoParametersCell"}  # serve/hooks.py: a tornado web.HTTPError (HTTP 400)
BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _classes() -> dict[str, list[tuple[str, list[str]]]]:
    """Class name -> [(module path, base names)] for every class in the package."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in NOT_OURS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                found.setdefault(node.name, []).append((str(rel), bases))
    return found


def _errors(classes: dict[str, list[tuple[str, list[str]]]]) -> dict[str, list[str]]:
    """Error class name -> its base names (closure over built-in exceptions)."""
    errors: dict[str, list[str]] = {}
    grew = True
    while grew:
        grew = False
        for name, defs in classes.items():
            for _path, bases in defs:
                if name not in errors and any(b in BUILTIN_ERRORS or b in errors for b in bases):
                    errors[name] = bases
                    grew = True
    return errors


def _reaches_root(name: str, errors: dict[str, list[str]]) -> bool:
    if name == "AmzigoError":
        return True
    return any(b in errors and _reaches_root(b, errors) for b in errors.get(name, []))


def test_every_error_class_has_the_one_root() -> None:
    errors = _errors(_classes())
    assert "AmzigoError" in errors and len(errors) > 30
    loose = sorted(n for n in errors if n not in THIRD_PARTY and not _reaches_root(n, errors))
    assert loose == [], f"error classes outside the AmzigoError tree: {loose}"


def test_error_class_names_are_unique() -> None:
    classes = _classes()
    errors = _errors(classes)
    twice = {n: [p for p, _ in classes[n]] for n in errors if len(classes[n]) > 1}
    assert twice == {}, f"two error classes share a name (catching one misses the other): {twice}"


def test_the_docstring_tree_names_every_error() -> None:
    errors = _errors(_classes())
    tree = amzigo_lab.errors.__doc__ or ""
    missing = sorted(n for n in errors if n not in THIRD_PARTY and n not in tree)
    assert missing == [], f"add these to the tree in amzigo_lab/errors.py: {missing}"
