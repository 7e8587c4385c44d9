"""Reproduce the KAN paper (Liu et al. 2024): `python -m benchmarks.paper [--full]`.

One module per experiment: grid_extension (a), scaling (b), tables (c), pinn (d), continual (e).
Each has ``run(settings, outdir) -> str`` returning a Markdown section (figures saved in outdir).
"""
