"""Forward selection of a few columns for least squares (order-recursive matching pursuit with a
beam and a pair step), the search behind :mod:`kanlab.discovery.features`."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

__all__ = ["forward_selection", "normalised_columns", "least_squares", "pick_size"]


def forward_selection(columns: Tensor, target: Tensor, max_terms: int, always: int = 0, beam: int = 16,
                      memory: int = 10_000_000, rescore: Callable[[list[int]], float] | None = None,
                      pair_limit: int = 1500, pair_parents: int = 16) -> list[list[int]]:
    """Forward selection (order-recursive matching pursuit) with a beam: each step extends each
    kept active set by the columns that lower its least-squares residual most (measured on the
    part of each column orthogonal to the set), and keeps the ``beam`` best sets (fewer where
    ``beam * N * F`` would pass ``memory`` numbers). The second and third steps also consider
    every pair of columns (where ``F <= pair_limit``) added to the start, and to the best
    one-column sets (``pair_parents`` of them with ``rescore``, 4 without): terms that cancel
    each other in part, like ``a/b - a``, or the three terms ``u, v, T uv`` of the linearised
    ``(u + v) / (1 + uv)``, are each a poor first pick. Returns the best active set after each step
    (``always`` leading columns are in from the start; ``rescore`` replaces the residual by
    another error, inf to reject an active set). ``columns`` ``(N, F)`` normalised."""
    n, f = columns.shape
    beam = max(1, min(beam, memory // max(1, n * f)))
    ortho, resid = columns.clone(), target.clone()
    for k in range(always):
        ortho, resid = _project_out(ortho, resid, k)
    root = (list(range(always)), ortho, resid)
    states, before = [root], [root]
    gram: _Gram | None = None
    paths: list[list[int]] = []
    tiny = 1e-12 * float(target.norm())
    for step in range(max_terms):
        if float(states[0][2].norm()) <= tiny:
            break
        options: list = []
        for active, ortho, resid in states:
            size = ortho.norm(dim=0)
            score = (ortho.T @ resid).abs() / size.clamp(min=1e-300)
            score[size <= 1e-8] = -1
            score[active] = -1
            top = torch.topk(score, min(beam if rescore is None else 4 * beam, f))
            gone = float(resid @ resid)
            options += [(gone - float(v) ** 2, (active, ortho, resid), int(k))
                        for v, k in zip(top.values, top.indices) if float(v) > 0]
        if step in (1, 2) and f <= pair_limit:
            gram = gram or _Gram(root)
            for parent in before[:pair_parents if rescore is not None else 4]:  # step 1: the root alone
                options += _pair_options(parent, gram, 4 * beam if rescore is None else 64 * beam)
        options.sort(key=lambda o: o[0])
        if rescore is not None:
            options = [(rescore(parent[0] + [k]), parent, k) for _, parent, k in options[:16 * beam]]
            options = sorted((o for o in options if math.isfinite(o[0])), key=lambda o: o[0])
        seen, new = set(), []
        for _, parent, k in options:
            key = frozenset(parent[0] + [k])
            if key in seen:
                continue
            seen.add(key)
            if callable(parent):
                parent = parent()
            ortho, resid = _project_out(parent[1], parent[2], k)
            new.append((parent[0] + [k], ortho, resid))
            if len(new) == beam:
                break
        if not new:
            break
        before, states = states, new
        paths.append(list(states[0][0]))
    return paths


class _Gram:
    """The Gram matrix ``g = A^T A`` and ``b = A^T r`` of a state's columns ``A`` and residual ``r``:
    a state one column ``k`` larger has ``g - g_k g_k^T / g_kk`` and ``b - g_k b_k / g_kk``
    (no pass over the rows)."""

    def __init__(self, state):
        active, ortho, resid = state
        self.active, self.g, self.b, self.gone = active, ortho.T @ ortho, ortho.T @ resid, float(resid @ resid)

    def after(self, k: int) -> tuple[Tensor, Tensor, float]:
        """``(g, b, squared residual)`` once column ``k`` joins the state."""
        gk, gkk = self.g[:, k], float(self.g[k, k])
        if gkk <= 1e-12:
            return self.g, self.b, self.gone
        bk = float(self.b[k])
        return self.g - torch.outer(gk, gk) / gkk, self.b - gk * (bk / gkk), self.gone - bk * bk / gkk


def _pair_options(parent, gram: _Gram, count: int) -> list:
    """The ``count`` best pairs of columns added to the ``parent`` state (``gram``'s state, or
    that state plus one column), as options ``(residual, parent, k)`` whose parent (``parent``
    plus the pair's first column) is built lazily. From the Gram matrix: a pair's gain is
    ``b_k^2/g_kk + (b_j - g_kj b_k/g_kk)^2 / (g_jj - g_kj^2/g_kk)``."""
    active = parent[0]
    extra = [k for k in active if k not in gram.active]
    g, b, gone = gram.after(extra[0]) if extra else (gram.g, gram.b, gram.gone)
    d = g.diagonal().clone()
    ok = d > 1e-12
    d = torch.where(ok, d, torch.ones_like(d))
    den = d[None, :] - g * g / d[:, None]
    gain = (b * b / d)[:, None] + (b[None, :] - g * (b / d)[:, None]) ** 2 / den.clamp(min=1e-300)
    bad = (den <= 1e-8 * d[None, :]) | ~ok[:, None] | ~ok[None, :]
    gain = torch.where(bad, torch.full_like(gain, -1.0), gain)
    gain.fill_diagonal_(-1.0)
    if active:
        gain[active, :] = -1.0
        gain[:, active] = -1.0
    top = torch.topk(gain.flatten(), min(count, gain.numel()))
    out = []
    f = g.shape[0]
    for v, idx in zip(top.values.tolist(), top.indices.tolist()):
        if v <= 0:
            break
        k, j = divmod(int(idx), f)

        def build(k=k):
            return (active + [k], *_project_out(parent[1], parent[2], k))

        out.append((gone - v, _Lazy(active + [k], build), j))
    return out


class _Lazy:
    """A beam state built on first use; ``[0]`` (its active set) is known beforehand."""

    def __init__(self, active: list[int], build: Callable):
        self.active, self.build = active, build

    def __getitem__(self, i: int):
        return self.active if i == 0 else self.build()[i]

    def __call__(self):
        return self.build()


def _project_out(ortho: Tensor, resid: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Column ``k`` (already orthogonal to the active set) projected out of the columns and the residual."""
    q = ortho[:, k] / ortho[:, k].norm().clamp(min=1e-300)
    return ortho - q[:, None] * (q @ ortho)[None, :], resid - q * (q @ resid)


def normalised_columns(values: Tensor) -> tuple[Tensor, Tensor]:
    """The columns of ``values`` ``(N, F)`` normalised to unit norm (non-finite entries and
    all-zero columns zeroed), and the norms ``(F,)``."""
    values = torch.where(torch.isfinite(values), values, torch.zeros_like(values))
    norms = values.norm(dim=0)
    ok = torch.isfinite(norms) & (norms > 1e-12 * norms.max().clamp(min=1e-300))
    norms = torch.where(ok, norms, torch.ones_like(norms))
    return values / norms * ok, norms


def least_squares(cols: Tensor, target: Tensor, active: list[int]) -> Tensor:
    """Least-squares coefficients ``(len(active),)`` of the ``active`` columns of ``cols``
    ``(N, F)`` for ``target`` ``(N,)``."""
    return torch.linalg.lstsq(cols[:, active], target[:, None]).solution[:, 0]


def pick_size(paths: list[list[int]], cols: Tensor, target: Tensor, held: Tensor) -> list[list[int]]:
    """The shortest active set whose held-out RMSE is within 10% of the path's best (and the
    next longer one)."""
    if not paths:
        return []
    errs = []
    for active in paths:
        coef = least_squares(cols[~held], target[~held], active)
        pred = cols[held][:, active] @ coef
        errs.append(float(((pred - target[held]) ** 2).mean().sqrt()))
    best = min(errs)
    k = next(i for i, e in enumerate(errs) if e <= 1.1 * best + 1e-14 * float(target.abs().max()))
    return paths[k:k + 2]
