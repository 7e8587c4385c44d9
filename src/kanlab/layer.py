"""KANLayer: a matrix of learnable 1-D functions phi_{o,i}(x) = w_b b(x) + w_s spline(x)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from . import kernels, splines
from .activations import base_function
from .validation import (
    as_model_input,
    check_dtype,
    check_finite,
    check_float,
    check_grid_range,
    check_int,
    check_memory,
)

__all__ = ["KANLayer", "estimate_layer_bytes"]


def estimate_layer_bytes(n_in: int, n_out: int, grid_size: int, spline_order: int, itemsize: int,
                         n_samples: int | None = None) -> tuple[int, int]:
    """Memory of one layer: ``(parameter and buffer bytes, peak bytes of a spline fit)``.

    The fit is the float64 least squares that initialisation (``grid_size + 1`` points), grid
    updates and refinement (fill points of the old and new grids, about ``4 (k + 1) G``) run:
    basis, augmented system, its Q factor and right-hand side, and the old splines at the
    points; with ``n_samples`` the samples' sort (values and indices) is added.
    """
    nb = grid_size + spline_order
    params = itemsize * (n_out * n_in * (nb + 3) + n_in * (nb + spline_order + 1))
    points = grid_size + 1 if n_samples is None else 4 * (spline_order + 1) * grid_size + 2
    rows = points + nb
    fit = 8 * n_in * rows * (4 * nb + n_out) + itemsize * points * n_out * n_in
    fit += (itemsize + 8) * n_in * (n_samples or 0)
    return params, fit


class KANLayer(nn.Module):
    """A Kolmogorov-Arnold layer: ``y_o = sum_i phi_{o,i}(x_i)``.

    Each edge computes ``phi(x) = w_b * b(x) + w_s * sum_m c_m B_m(x)`` with B-spline
    bases ``B_m`` of order ``spline_order`` on a per-input grid of ``grid_size``
    intervals (``grid_size + spline_order`` bases).

    Inputs outside the grid range are well defined: the spline is continued on ``k``
    extra knots on each side with partial bases, and is exactly zero beyond those;
    the base branch carries the signal everywhere. ``update_grid`` moves the grid
    to the data.

    Args:
        in_features, out_features: number of inputs and outputs.
        grid_size: number of grid intervals G (>= 1).
        spline_order: B-spline order k (>= 1; 3 = cubic).
        grid_range: the initial grid's range (lo, hi).
        base_activation: name of b(x), see :data:`kanlab.activations.BASE_ACTIVATIONS`.
        grid_eps: mix of the uniform and the quantile grid in ``update_grid`` (1 = uniform).
        noise_scale: amplitude of the noise the splines are initialised to fit.
        generator: random source for the initialisation.

    Shape:
        input ``(..., in_features)`` -> output ``(..., out_features)``.

    Example:
        >>> layer = KANLayer(2, 3, generator=torch.Generator().manual_seed(0))
        >>> layer(torch.zeros(4, 2)).shape
        torch.Size([4, 3])
    """

    # buffers (registered in __init__; declared here for type checkers)
    grid: Tensor  # (in_features, grid_size + 2 * spline_order + 1) knots
    mask: Tensor  # (out_features, in_features) 1 = live edge, 0 = pruned

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, spline_order: int = 3,
                 grid_range=(-1.0, 1.0), base_activation: str = "silu", grid_eps: float = 1.0,
                 noise_scale: float = 0.1, dtype=None, device=None, generator: torch.Generator | None = None):
        """Allocate the parameters and buffers (of ``dtype`` on ``device``) and initialise them
        with :meth:`reset_parameters` (arguments: see the class docstring)."""
        super().__init__()
        in_features, out_features = check_int("in_features", in_features, 1), check_int("out_features", out_features, 1)
        grid_size, spline_order = check_int("grid_size", grid_size, 1), check_int("spline_order", spline_order, 1)
        base_function(base_activation)  # validates the name
        lo, hi = check_grid_range(grid_range)
        grid_eps = check_float("grid_eps", grid_eps, 0.0, 1.0)
        noise_scale = check_float("noise_scale", noise_scale, 0.0)
        item = torch.empty((), dtype=check_dtype(dtype)).element_size()
        check_memory(f"KANLayer({in_features}, {out_features}, grid_size={grid_size})",
                     sum(estimate_layer_bytes(in_features, out_features, grid_size, spline_order, item)), device)
        self.in_features, self.out_features = in_features, out_features
        self.grid_size, self.spline_order = grid_size, spline_order
        self.grid_range = (lo, hi)
        self.base_activation, self.grid_eps, self.noise_scale = base_activation, grid_eps, noise_scale
        factory = {"dtype": dtype, "device": device}
        n_basis = grid_size + spline_order
        self.register_buffer("grid", splines.uniform_grid(in_features, grid_size, spline_order,
                                                          self.grid_range, **factory))
        self.register_buffer("mask", torch.ones(out_features, in_features, **factory))
        self.coef = nn.Parameter(torch.empty(out_features, in_features, n_basis, **factory))
        self.scale_base = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.scale_spline = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self._uniform = True
        self.reset_parameters(generator)

    # ------------------------------------------------------------------ set-up
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise in place: splines fit small noise (near zero), ``w_b`` Xavier-uniform,
        ``w_s = 1``, every edge live.

        Args:
            generator: random source of the noise and of ``w_b`` (None: torch's default one).
        """
        with torch.no_grad():
            n_in, n_out, g = self.in_features, self.out_features, self.grid_size
            points = self.grid[:, self.spline_order: self.spline_order + g + 1].T  # (G+1, n_in)
            noise = torch.rand(g + 1, n_out, n_in, generator=generator, dtype=self.coef.dtype,
                               device="cpu").to(self.coef.device)
            noise = (noise - 0.5) * self.noise_scale / g
            self.coef.copy_(splines.curve_to_coef(points, noise, self.grid, self.spline_order))
            bound = math.sqrt(6.0 / (n_in + n_out))
            base = torch.rand(n_out, n_in, generator=generator, dtype=self.coef.dtype, device="cpu")
            self.scale_base.copy_(((base * 2 - 1) * bound).to(self.coef.device))
            self.scale_spline.fill_(1.0)
            self.mask.fill_(1.0)

    def extra_repr(self) -> str:
        """The sizes and base activation shown by ``repr(layer)``."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"grid_size={self.grid_size}, spline_order={self.spline_order}, "
                f"base_activation={self.base_activation!r}")

    @property
    def n_basis(self) -> int:
        """Number of B-spline bases per edge, ``grid_size + spline_order``."""
        return self.grid_size + self.spline_order

    def set_grid(self, grid: Tensor) -> None:
        """Replace the knot vectors; coefficients are left as they are.

        Args:
            grid: new knots, non-decreasing along each row.

        Shape:
            ``grid`` ``(in_features, grid_size + 2 * spline_order + 1)``.
        """
        expected = (self.in_features, self.grid_size + 2 * self.spline_order + 1)
        if tuple(grid.shape) != expected:
            raise ValueError(f"grid must have shape {expected}, got {tuple(grid.shape)}")
        if not bool((grid.diff(dim=1) >= 0).all()):
            raise ValueError("grid must be non-decreasing along each row")
        self.grid.copy_(grid)
        self._uniform = splines.grid_is_uniform(self.grid)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._uniform = splines.grid_is_uniform(self.grid)

    # ------------------------------------------------------------------ compute
    def forward(self, x: Tensor) -> Tensor:
        """The layer's output ``y_o = sum_i phi_{o,i}(x_i)`` through the fastest available kernel.

        Args:
            x: inputs; arrays are converted to the parameters' dtype and device, a tensor of
                another dtype or device is a TypeError that names both.

        Shape:
            ``x`` ``(..., in_features)`` -> ``(..., out_features)``.
        """
        x = as_model_input(x, self.in_features, self.coef, "x")
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)  # (N, n_in)
        y = kernels.kan_linear(flat, self.grid, self.coef, self.scale_base * self.mask,
                               self.scale_spline * self.mask, self.spline_order,
                               self.base_activation, uniform=self._uniform)
        return y.reshape(*lead, self.out_features)

    def edges(self, x: Tensor) -> Tensor:
        """Every edge's value ``phi_{o,i}(x_i)`` (masked edges are zero).

        Args:
            x: inputs.

        Shape:
            ``x`` ``(..., n_in)`` -> ``(N, n_out, n_in)`` with ``N`` the product of the leading dims.
        """
        x = as_model_input(x, self.in_features, self.coef, "x")
        return kernels.kan_edges_reference(x.reshape(-1, self.in_features), self.grid, self.coef,
                                           self.scale_base * self.mask,
                                           self.scale_spline * self.mask, self.spline_order,
                                           self.base_activation)

    def spline(self, x: Tensor) -> Tensor:
        """The spline part ``sum_m c_m B_m(x_i)`` of every edge (no scales, no mask).

        Args:
            x: inputs.

        Shape:
            ``x`` ``(N, n_in)`` -> ``(N, n_out, n_in)``.
        """
        return splines.coef_to_curve(x, self.grid, self.coef, self.spline_order)

    # ------------------------------------------------------------------ grids
    @torch.no_grad()
    def update_grid(self, x: Tensor) -> None:
        """Move the grid to the samples ``x`` ``(N, n_in)`` and refit the splines to keep them.

        The new grid mixes a uniform grid over the samples' range and their quantiles
        (``grid_eps``). Coefficients are refit by least squares on the samples plus points
        filling every new interval, so the function is kept where the data lies; those that
        no sample reaches (the margin beyond the samples) then continue the outermost sampled
        pieces (:func:`kanlab.splines.continue_coefficients`).
        """
        x = self._check_samples(x, self.grid_size)
        new_grid = self._checked_grid(splines.adaptive_grid(x, self.grid_size, self.spline_order, self.grid_eps))
        coef = splines.curve_to_coef(*self._samples(new_grid), new_grid, self.spline_order)
        coef = self._checked_coef(splines.continue_coefficients(coef, new_grid, *x.aminmax(dim=0), self.spline_order))
        self.coef.copy_(coef)  # nothing was changed until here: a rejected update leaves the layer as it was
        self.grid.copy_(new_grid)
        self._uniform = splines.grid_is_uniform(new_grid)

    def _check_samples(self, x: Tensor, grid_size: int) -> Tensor:
        """``x`` as ``(N, n_in)``: finite, at least 2 samples, and a fit on it that fits in memory."""
        x = as_model_input(x, self.in_features, self.coef, "x").reshape(-1, self.in_features)
        if x.shape[0] < 2:
            raise ValueError(f"update_grid needs at least 2 samples in x, got {x.shape[0]}")
        check_finite(x, "x")
        self.check_fit_memory(grid_size, x.shape[0])
        return x

    def check_fit_memory(self, grid_size: int, n_samples: int | None) -> None:
        """Raise ValueError before a grid update / refinement that would not fit in memory.

        Args:
            grid_size: the grid size the splines would be fit on.
            n_samples: samples the fit sees (None or 0: fill points only).
        """
        params, fit = estimate_layer_bytes(self.in_features, self.out_features, grid_size, self.spline_order,
                                           self.coef.element_size(), n_samples)
        check_memory(f"a spline fit of {n_samples or 'no'} samples on a grid of {grid_size} intervals "
                     f"(layer {self.in_features} -> {self.out_features})", params + fit, self.coef.device)

    def _checked_grid(self, grid: Tensor) -> Tensor:
        if not bool(torch.isfinite(grid).all()) or not bool((grid.diff(dim=1) >= 0).all()):
            raise ValueError("the samples give a grid that is not finite and non-decreasing (values too large "
                             "for the dtype?); rescale the inputs")
        return grid

    def _checked_coef(self, coef: Tensor) -> Tensor:
        if not bool(torch.isfinite(coef).all()):
            raise ValueError("refitting the splines on the samples gave NaN or inf coefficients (values too "
                             "large for the dtype?); rescale the inputs")
        return coef

    @torch.no_grad()
    def refine(self, grid_size: int, x: Tensor | None = None) -> KANLayer:
        """A new layer on a grid of ``grid_size`` intervals representing the same function.

        Without ``x`` the grid keeps its range and local density; uniform G -> m * G
        refinements are then exact (nested knots), other sizes are least-squares
        projections. With samples ``x`` ``(N, n_in)`` the new grid is placed on the data
        (as :meth:`update_grid` would, at the new size), so that inputs which had moved onto
        the old grid's extension knots stay represented.
        """
        grid_size = check_int("grid_size", grid_size, 1)
        if x is not None:
            x = self._check_samples(x, grid_size)
        else:
            self.check_fit_memory(grid_size, 0)
        new = KANLayer(self.in_features, self.out_features, grid_size, self.spline_order,
                       self.grid_range, self.base_activation, self.grid_eps, self.noise_scale,
                       dtype=self.coef.dtype, device=self.coef.device)
        new.scale_base.copy_(self.scale_base)
        new.scale_spline.copy_(self.scale_spline)
        new.mask.copy_(self.mask)
        if x is None:
            new_grid = splines.refinement_grid(self.grid, self.spline_order, grid_size)
        else:
            new_grid = self._checked_grid(splines.adaptive_grid(x, grid_size, self.spline_order, self.grid_eps))
        new.grid.copy_(new_grid)
        new.coef.copy_(self._checked_coef(splines.curve_to_coef(*self._samples(new_grid), new_grid,
                                                                self.spline_order)))
        new._uniform = splines.grid_is_uniform(new_grid)
        return new

    def _samples(self, new_grid: Tensor) -> tuple[Tensor, Tensor]:
        """Points filling every interval of the new and the old grid, clamped to the new
        grid's range, and the old splines there. The new grid follows the data (quantiles
        and range), so its points weight the fit like the data does, and their number
        depends on the grid sizes only, never on the number of samples.

        Shape: ``(M, n_in)`` and ``(M, n_out, n_in)`` with ``M = 2 (k + 1) (G_new + G_old) + 2``.
        """
        k = self.spline_order
        pts = torch.cat([splines.fill_points(new_grid, k, 2 * (k + 1)),
                         splines.fill_points(self.grid, k, 2 * (k + 1))], dim=0)
        pts = torch.minimum(torch.maximum(pts, new_grid[:, k]), new_grid[:, -k - 1])
        return pts, self.spline(pts)
