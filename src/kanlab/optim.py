"""L-BFGS that keeps learning at tiny losses.

``torch.optim.LBFGS`` only stores a curvature pair when ``y . s > 1e-10``. KANs fitted in
float64 reach mean squared errors of 1e-12 and below, where every pair falls under that
bar, the Hessian estimate freezes and training stalls near RMSE 1e-4. This optimizer is
the same algorithm (two-loop recursion, strong Wolfe line search) with that threshold as
an argument (``tolerance_ys``, default 1e-32).
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.optim.lbfgs import _strong_wolfe

__all__ = ["LBFGS"]


class LBFGS(torch.optim.Optimizer):
    """Full-batch L-BFGS with a strong Wolfe line search.

    Args:
        params: parameters (one group).
        lr: initial step length of the line search.
        max_iter: iterations per ``step`` call.
        history_size: curvature pairs kept.
        tolerance_grad, tolerance_change, tolerance_ys: stop / skip thresholds.
    """

    def __init__(self, params, lr: float = 1.0, max_iter: int = 20, history_size: int = 10,
                 tolerance_grad: float = 1e-32, tolerance_change: float = 1e-32, tolerance_ys: float = 1e-32):
        defaults = dict(lr=lr, max_iter=max_iter, history_size=history_size, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, tolerance_ys=tolerance_ys)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS takes one parameter group")
        self._params = self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in self._params])

    def _add(self, step: float, direction: Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.add_(direction[offset:offset + n].view_as(p), alpha=step)
            offset += n

    def _evaluate(self, closure, x: list[Tensor], t: float, d: Tensor) -> tuple[float, Tensor]:
        self._add(t, d)
        loss = float(closure())
        grad = self._flat_grad()
        for p, v in zip(self._params, x):
            p.copy_(v)
        return loss, grad

    @torch.no_grad()
    def step(self, closure):  # noqa: C901 - one algorithm, kept in one place
        """Run up to ``max_iter`` iterations; ``closure`` re-evaluates and backpropagates the loss."""
        closure = torch.enable_grad()(closure)
        g = self.param_groups[0]
        lr, max_iter, history = g["lr"], g["max_iter"], g["history_size"]
        state = self.state[self._params[0]]
        state.setdefault("n_iter", 0)
        orig_loss = closure()
        loss = float(orig_loss)
        flat_grad = self._flat_grad()
        if flat_grad.abs().max() <= g["tolerance_grad"]:
            return orig_loss
        d, t = state.get("d"), state.get("t")
        s_hist, y_hist, rho = state.setdefault("s", []), state.setdefault("y", []), state.setdefault("rho", [])
        h_diag, prev_grad = state.get("h_diag", 1.0), state.get("prev_grad")
        for it in range(max_iter):
            state["n_iter"] += 1
            if state["n_iter"] == 1 or prev_grad is None:
                d, h_diag = -flat_grad, 1.0
                s_hist.clear(), y_hist.clear(), rho.clear()
            else:
                y, s = flat_grad - prev_grad, d * t
                ys = float(y @ s)
                if ys > g["tolerance_ys"]:
                    if len(s_hist) == history:
                        s_hist.pop(0), y_hist.pop(0), rho.pop(0)
                    s_hist.append(s), y_hist.append(y), rho.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                d = self._two_loop(flat_grad, s_hist, y_hist, rho, h_diag)
            prev_grad, prev_loss = flat_grad.clone(), loss
            t = min(1.0, 1.0 / float(flat_grad.abs().sum())) * lr if state["n_iter"] == 1 else lr
            gtd = float(flat_grad @ d)
            if gtd > -g["tolerance_change"]:
                break
            x0 = [p.detach().clone() for p in self._params]
            loss, flat_grad, t, _ = _strong_wolfe(lambda x, step, dd: self._evaluate(closure, x, step, dd),
                                                  x0, t, d, loss, flat_grad, gtd)
            self._add(t, d)
            if (it == max_iter - 1 or flat_grad.abs().max() <= g["tolerance_grad"]
                    or (d * t).abs().max() <= g["tolerance_change"]
                    or abs(loss - prev_loss) < g["tolerance_change"]):
                break
        state.update(d=d, t=t, h_diag=h_diag, prev_grad=prev_grad)
        return orig_loss

    @staticmethod
    def _two_loop(grad: Tensor, s_hist, y_hist, rho, h_diag: float) -> Tensor:
        q = -grad
        alphas = []
        for s, y, r in zip(reversed(s_hist), reversed(y_hist), reversed(rho)):
            a = r * float(s @ q)
            alphas.append(a)
            q = q - a * y
        r_vec = q * h_diag
        for (s, y, r), a in zip(zip(s_hist, y_hist, rho), reversed(alphas)):
            b = r * float(y @ r_vec)
            r_vec = r_vec + (a - b) * s
        return r_vec
