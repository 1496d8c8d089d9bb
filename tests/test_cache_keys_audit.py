"""Audit of every cache call site in the code base: each key is derived from its inputs' keys.

An AST scan of every ``.py`` file under claims/, models/, stimuli/, analysis/ and harness/. A call
``<...cache>.arrays/pickle/json/directory/busy(namespace, config, ...)`` passes the audit when its
config is a :func:`harness.cache.content_key` call, a name assigned from one, or a call of a
function or method (same module) whose every ``return`` is one of those. A ``content_key`` call must
name at least one input (a manifest or a parent key) and no path parameter (``root=``,
``str(root)``...). Anything else (a dict literal, ``dict(...)``, a bare parameter) is flagged: it is a
key made of names and paths. The audit is shown to fail on small bad snippets.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("claims", "models", "stimuli", "analysis", "harness")
CACHE_METHODS = {"arrays", "pickle", "json", "directory", "busy"}
KEY_BUILDER = "content_key"
PATHY = ("root", "path", "dir", "folder", "file")


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return "?"


def _is_cache_receiver(node) -> bool:
    name = _dotted(node).lower()
    return name.split(".")[-1] in ("cache", "cache()") or name.endswith("cache()")


def _called_name(call: ast.Call) -> str:
    return _dotted(call.func).split(".")[-1]


def _pathy(text: str) -> bool:
    return any(p in text.lower() for p in PATHY)


class _Module:
    """One parsed file: its functions by name and every scope's assignments."""

    def __init__(self, tree: ast.AST):
        self.tree = tree
        self.functions: dict[str, list] = {}
        self.parent: dict = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.setdefault(node.name, []).append(node)

    def scope(self, node):
        while node in self.parent:
            node = self.parent[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return node
        return self.tree

    def assignments(self, scope, name: str) -> list:
        out = []
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                out.append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name \
                    and node.value is not None:
                out.append(node.value)
        return out


def _key_problem(mod: _Module, expr, where, seen: frozenset = frozenset()) -> str | None:
    """None when ``expr`` is a content key; else why not."""
    if isinstance(expr, ast.IfExp):
        return _key_problem(mod, expr.body, where, seen) or _key_problem(mod, expr.orelse, where, seen)
    if isinstance(expr, ast.Call):
        name = _called_name(expr)
        if name == KEY_BUILDER:
            return None                                   # its own arguments are audited separately
        if name in mod.functions and name not in seen:
            problems = []
            for fn in mod.functions[name]:
                returns = [n.value for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None]
                if not returns:
                    problems.append(f"{name}() returns nothing")
                problems += [p for r in returns if (p := _key_problem(mod, r, fn, seen | {name}))]
            return f"{name}(): {problems[0]}" if problems else None
        if name == "dict" and any(_pathy(ast.unparse(a)) for a in [*expr.args, *(k.value for k in expr.keywords)]):
            return f"a dict with a bare path ({ast.unparse(expr)[:80]}): key the data by folder_manifest(...)"
        return f"{ast.unparse(expr)[:80]} is not built by {KEY_BUILDER}(...)"
    if isinstance(expr, ast.Name):
        values = mod.assignments(mod.scope(where) if not isinstance(where, ast.AST) or where in mod.parent
                                 else where, expr.id)
        if not values:
            return (f"{expr.id!r} is a parameter or an outer name, not a key built here: pass the inputs' "
                    f"manifests and build the key with {KEY_BUILDER}(...)")
        problems = [p for v in values if (p := _key_problem(mod, v, v, seen))]
        return problems[0] if problems else None
    if isinstance(expr, ast.Dict):
        text = ast.unparse(expr)
        if _pathy(text):
            return f"a dict with a bare path ({text[:80]}): key the data by folder_manifest(...)"
        return f"a dict literal ({text[:80]}) names the data instead of hashing it: use {KEY_BUILDER}(manifest, ...)"
    return f"{ast.unparse(expr)[:80]} is not built by {KEY_BUILDER}(...)"


def _content_key_problems(call: ast.Call) -> list[str]:
    out = []
    if not call.args:
        kws = ", ".join(k.arg or "**" for k in call.keywords)
        out.append(f"{KEY_BUILDER}({kws}) has no input: a name without a manifest or parent key")
    for kw in call.keywords:
        text = ast.unparse(kw.value)
        if kw.arg and _pathy(kw.arg) and kw.arg not in ("files",):
            out.append(f"{KEY_BUILDER}(..., {kw.arg}=...) keys by a path: use folder_manifest({text})")
        elif isinstance(kw.value, ast.Call) and _called_name(kw.value) in ("str", "fspath") and _pathy(text):
            out.append(f"{KEY_BUILDER}(..., {kw.arg}={text}) keys by a path string: use folder_manifest(...)")
    return out


def audit_source(source: str, filename: str = "<snippet>") -> list[str]:
    """Every cache key in ``source`` that is not derived from its inputs' keys, as ``file:line: why``."""
    tree = ast.parse(source, filename)
    mod = _Module(tree)
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in CACHE_METHODS and _is_cache_receiver(f.value):
            config = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "config"), None)
            if config is None:
                problems.append(f"{filename}:{node.lineno}: {_dotted(f)} has no config argument")
                continue
            why = _key_problem(mod, config, node)
            if why:
                problems.append(f"{filename}:{node.lineno}: {_dotted(f)}(...): {why}")
        elif _called_name(node) == KEY_BUILDER and not isinstance(f, ast.Lambda):
            problems += [f"{filename}:{node.lineno}: {p}" for p in _content_key_problems(node)]
    return problems


def _files() -> list[Path]:
    return sorted(p for d in SCANNED for p in (REPO / d).rglob("*.py") if "__pycache__" not in p.parts)


def _cache_calls(source: str) -> int:
    tree = ast.parse(source)
    return sum(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in CACHE_METHODS
               and _is_cache_receiver(n.func.value) for n in ast.walk(tree))


# ---------------------------------------------------------------------------------------- the audit
def test_every_cache_key_in_the_code_base_is_derived_from_its_inputs():
    problems, n_calls = [], 0
    for path in _files():
        if path == REPO / "harness" / "cache.py":
            continue                       # the cache's own helpers pass their caller's config through
        src = path.read_text()
        n_calls += _cache_calls(src)
        problems += audit_source(src, str(path.relative_to(REPO)))
    assert n_calls >= 15, f"the audit found only {n_calls} cache call sites: is the scan still looking?"
    assert not problems, "cache keys not derived from content:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------- it can fail
BAD = {
    "a bare path": '''
def f(cache, root):
    return cache.arrays("natsound", dict(root=str(root)), build, version="1")
''',
    "a stimulus name without a manifest": '''
class K:
    def feats(self, c, s):
        key = dict(self.model_config(c, s), stimulus="natsound165")
        return self.cache.arrays("kim2024-features", key, build, version="1")
    def model_config(self, c, s):
        return content_key(self.corpus(), condition=c, seed=s)
''',
    "content_key without inputs": '''
def f(cache):
    return cache.json("x", content_key(stimulus="natsound165"), build, version="1")
''',
    "content_key with a path": '''
def f(cache, m, root):
    return cache.pickle("x", content_key(m, root=str(root)), build, version="1")
''',
    "a path string under another name": '''
def f(cache, m, root):
    return cache.pickle("x", content_key(m, where=str(root)), build, version="1")
''',
    "a parameter passed through": '''
def f(cache, key):
    return cache.arrays("x", key, build, version="1")
''',
    "a helper that returns a dict": '''
def key_of(root):
    return {"data": str(root)}
def f(run, root):
    return run.cache.directory("x", key_of(root), build, version="1")
''',
    "busy with a name": '''
def f(self):
    return self.cache.busy("kim2024-model", {"condition": "with_music"}, version="1")
''',
}

GOOD = '''
from harness.cache import content_key, entry_ref, folder_manifest

class K:
    def natsound_key(self, root):
        return content_key(folder_manifest(root), self.corpus_input(), sr=22050)
    def features(self, root):
        source = entry_ref("natsound", self.natsound_key(root), version="1")
        key = content_key(self.model_input(), source, stimulus="natsound165")
        return self.cache.arrays("kim2024-features", key, build, version="1")
    def logmel(self, root):
        return self.cache.arrays("natsound", self.natsound_key(root), build, version="1")

def g(cache, manifests):
    cfg = content_key(*manifests, n=3) if manifests else content_key(folder_manifest("x"), n=3)
    return cache.pickle("y", cfg, build, version="1")
'''


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_audit_flags_a_bad_key(case):
    problems = audit_source(BAD[case])
    assert problems, f"the audit missed {case}"


def test_the_audit_passes_keys_built_from_manifests():
    assert audit_source(GOOD) == []
