import torch

from kanlab.optim import LBFGS


def quadratic_problem(scale):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(40, 8, generator=gen, dtype=torch.float64)
    b = torch.randn(40, generator=gen, dtype=torch.float64)
    w_star = torch.linalg.lstsq(a, b).solution
    return a, b, w_star, lambda w: scale * ((a @ w - b) ** 2).sum()


def run(opt_cls, scale, steps=5, **kw):
    a, b, w_star, f = quadratic_problem(scale)
    w = torch.zeros(8, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([w], **kw)

    def closure():
        opt.zero_grad()
        loss = f(w)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return (w.detach() - w_star).abs().max()


def test_matches_torch_lbfgs_on_a_well_scaled_problem():
    ours = run(LBFGS, 1.0)
    ref = run(torch.optim.LBFGS, 1.0, line_search_fn="strong_wolfe", tolerance_grad=1e-32, tolerance_change=1e-32)
    # both converge; the last digits depend on the machine's summation order
    assert ours < 1e-8 and ref < 1e-6


def test_keeps_learning_when_curvature_pairs_are_tiny():
    # at loss scale 1e-14 every y.s is far below torch's fixed 1e-10 threshold
    ours = run(LBFGS, 1e-14)
    ref = run(torch.optim.LBFGS, 1e-14, line_search_fn="strong_wolfe", tolerance_grad=1e-32, tolerance_change=1e-32)
    assert ours < 1e-8
    assert ref > 100 * ours  # torch's stalls: the reason kanlab has its own
