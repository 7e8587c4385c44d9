"""Formula -> KAN: build a KAN whose symbolic edges are the pieces of a sympy expression.

Each node of the KAN is an addition node (a sum of edges ``c f(a u + b) + d``) or a
multiplication node (the product of two such sums, ``mult_arity = 2``). Functions are
matched against the library (user-registered ones included), sub-expressions that feed
a later layer are carried forward by identity edges, and the numeric (spline) part of
every edge is switched off, so ``compile_formula(f)`` computes ``f`` exactly and its
``a, b, c, d`` stay trainable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from .library import library_names, get_function

__all__ = ["compile_formula"]


@dataclass(eq=False)
class _Edge:
    name: str
    a: float
    b: float
    c: float
    d: float
    child: "_Node | None"  # None: a constant edge (from any node of the previous layer)


@dataclass(eq=False)
class _Node:
    kind: str  # "input", "sum" or "mult"
    slots: list = field(default_factory=list)  # list of lists of _Edge (1 for sum, 2 for mult)
    index: int = 0  # input index
    level: int = 0


def _sp():
    import sympy

    return sympy


def _function_table():
    """sympy function class -> library name, and power exponent -> library name."""
    sp = _sp()
    u = sp.Symbol("u")
    funcs, powers = {}, {}
    for name in library_names():
        try:
            e = get_function(name).sympy_fn(u)
        except Exception:  # noqa: BLE001 - a user entry that cannot take a symbol is just not matched
            continue
        if e.is_Pow and e.base == u and e.exp.is_Number:
            powers.setdefault(e.exp, name)
        elif isinstance(e, sp.Function) and e.args == (u,):
            funcs.setdefault(e.func, name)
    return funcs, powers


class _Compiler:
    def __init__(self, variables):
        self.variables = list(variables)
        self.inputs = {v: _Node("input", index=k) for k, v in enumerate(self.variables)}
        self.memo = {}
        self.funcs, self.powers = _function_table()

    # ---------------------------------------------------------------- expression -> nodes
    def node(self, expr) -> _Node:
        if expr in self.inputs:
            return self.inputs[expr]
        if expr not in self.memo:
            coeff, dep = expr.as_independent(*self.variables, as_Add=False)
            factors: tuple = dep.args if dep.is_Mul and not expr.is_Add else ()
            if len(factors) >= 2:
                first, rest = factors[0], _sp().Mul(*factors[1:])
                slots = [self.edges(coeff * first), self.edges(rest)]
                self.memo[expr] = self._make("mult", slots)
            else:
                self.memo[expr] = self._make("sum", [self.edges(expr)])
        return self.memo[expr]

    def _make(self, kind: str, slots) -> _Node:
        for slot in slots:  # one edge per (slot, source): repeated sources go through private relays
            seen = set()
            for e in slot:
                if e.child is not None and id(e.child) in seen:
                    e.child = self._make("sum", [[_Edge("x", 1.0, 0.0, 1.0, 0.0, e.child)]])
                elif e.child is not None:
                    seen.add(id(e.child))
        children = [e.child.level for s in slots for e in s if e.child is not None]
        return _Node(kind, slots, level=1 + max(children, default=0))

    def edges(self, expr) -> list:
        const, rest = expr.as_independent(*self.variables, as_Add=True)
        terms = _sp().Add.make_args(rest) if rest != 0 else ()
        out = [self.term(t) for t in terms]
        if not out:
            return [_Edge("0", 1.0, 0.0, 0.0, _real(const, expr), None)]
        out[0].d += _real(const, expr)
        return out

    def term(self, t) -> _Edge:
        sp = _sp()
        k, core = t.as_independent(*self.variables, as_Add=False)
        k = _real(k, t)
        if core in self.inputs:
            return _Edge("x", 1.0, 0.0, k, 0.0, self.inputs[core])
        if core.is_Mul:
            return _Edge("x", 1.0, 0.0, k, 0.0, self.node(core))
        if core.is_Pow and core.exp in self.powers:
            name, arg = self.powers[core.exp], core.base
        elif core.is_Pow and core.base == sp.E:
            name, arg = self.funcs.get(sp.exp), core.exp
        elif isinstance(core, sp.Function) and len(core.args) == 1 and core.func in self.funcs:
            name, arg = self.funcs[core.func], core.args[0]
        else:
            raise ValueError(f"cannot compile {core}: no library function matches it "
                             f"(known: {library_names()}; register more with kanlab.symbolic.register)")
        b, rest = arg.as_independent(*self.variables, as_Add=True)
        if rest.is_Add:
            a, child = 1.0, self.node(rest)
        else:
            a_expr, core_arg = rest.as_independent(*self.variables, as_Add=False)
            a, child = _real(a_expr, arg), self.node(core_arg)
        return _Edge(name, a, _real(b, arg), k, 0.0, child)


def _real(v, where) -> float:
    try:
        out = complex(v)
    except TypeError:
        raise ValueError(f"cannot compile {where}: {v} is not a number") from None
    if out.imag != 0:
        raise ValueError(f"cannot compile {where}: the constant {v} is not real")
    return out.real


# ---------------------------------------------------------------------- nodes -> layers
def _relay(cache: dict, node: _Node, level: int) -> _Node:
    """``node`` carried to ``level`` by identity edges (shared between users)."""
    if node.level == level:
        return node
    key = (id(node), level)
    if key not in cache:
        prev = _relay(cache, node, level - 1)
        cache[key] = _Node("sum", [[_Edge("x", 1.0, 0.0, 1.0, 0.0, prev)]], level=level)
    return cache[key]


def _layers(outputs: list) -> list:
    """Nodes of each level 1..L in KAN order (sums, then products); relays inserted."""
    depth = max(n.level for n in outputs)
    if len(outputs) > 1 and any(n.kind == "mult" for n in outputs):
        depth += 1  # mixed outputs: carry every product to a final layer of sums
    cache: dict = {}
    final = [_relay(cache, n, depth) for n in outputs]
    levels = {depth: final}
    queue, seen = list(final), {id(n) for n in final}
    while queue:
        node = queue.pop(0)
        for slot in node.slots:
            for e in slot:
                if e.child is None:
                    continue
                e.child = _relay(cache, e.child, node.level - 1)
                if e.child.kind != "input" and id(e.child) not in seen:
                    seen.add(id(e.child))
                    levels.setdefault(e.child.level, []).append(e.child)
                    queue.append(e.child)
    return [sorted(levels.get(k, []), key=lambda n: n.kind == "mult") for k in range(1, depth + 1)]


def compile_formula(exprs, variables: Sequence | None = None, dtype=torch.float64, device=None, **kan_kwargs):
    """A KAN computing the sympy expression(s) ``exprs`` with symbolic edges.

    Args:
        exprs: one sympy expression or a list (one per output).
        variables: the inputs in order (symbols or names); default: free symbols sorted by name.
        dtype, device: of the model (float64 by default: the model is exact to rounding).
        kan_kwargs: other :class:`kanlab.KAN` arguments (grid_size, ...) for the numeric
            part, which is switched off but can be revived with ``unfix_symbolic``.

    Returns:
        a :class:`kanlab.KAN` with ``model(x) == f(x)`` and ``symbolic_formula(model) == f``.

    Example:
        >>> import sympy
        >>> x, y = sympy.symbols("x y")
        >>> model = compile_formula(sympy.exp(sympy.sin(sympy.pi * x) + y ** 2))
        >>> model.width
        [2, 1, 1]
    """
    from ..network import KAN

    sp = _sp()
    single = isinstance(exprs, sp.Basic)
    exprs = [sp.sympify(e) for e in ([exprs] if single else exprs)]
    if not exprs:
        raise ValueError("exprs must hold at least one expression")
    if variables is None:
        variables = sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name)
    variables = [v if isinstance(v, sp.Basic) else sp.Symbol(str(v)) for v in variables]
    if not variables:
        raise ValueError("exprs have no variables; pass variables=[...] for a constant formula")
    extra = set().union(*(e.free_symbols for e in exprs)) - set(variables)
    if extra:
        raise ValueError(f"exprs use symbols {sorted(map(str, extra))} that are not in variables")
    comp = _Compiler(variables)
    outputs: list = []
    for e in exprs:
        node = comp.node(e)
        if node.kind == "input" or any(node is o for o in outputs):
            node = comp._make("sum", [[_Edge("x", 1.0, 0.0, 1.0, 0.0, node)]])
        outputs.append(node)
    levels = _layers(outputs)
    width = [len(variables)] + [_width(nodes) for nodes in levels]
    model = KAN(width, mult_arity=2, dtype=dtype, device=device,
                input_names=[v.name for v in variables], **kan_kwargs)
    _fill(model, levels)
    return model


def _fill(model, levels: list) -> None:
    """Switch the numeric edges off and write every node's edges into the symbolic layers."""
    from .ops import symbolic_layer

    with torch.no_grad():
        for layer in model.layers:
            layer.mask.zero_()
    for l, nodes in enumerate(levels):
        position = {id(n): k for k, n in enumerate(levels[l - 1])} if l > 0 else {}
        sym = symbolic_layer(model, l)
        slot = 0
        for node in nodes:
            for edges in node.slots:
                for e in edges:
                    child = e.child
                    src = 0 if child is None else (child.index if child.kind == "input" else position[id(child)])
                    sym.set_edge(slot, src, e.name, e.a, e.b, e.c, e.d)
                slot += 1


def _width(nodes: list):
    n_mult = sum(n.kind == "mult" for n in nodes)
    n_sum = len(nodes) - n_mult
    return n_sum if n_mult == 0 else [n_sum, n_mult]
