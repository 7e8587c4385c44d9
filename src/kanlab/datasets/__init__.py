"""Datasets: the container, synthetic data from functions, and the KAN paper's problems."""
from .core import Dataset, as_dataset, from_function
from .feynman import FEYNMAN, feynman_dataset
from .paper import (
    PEAK_CENTERS,
    TOY,
    PoissonProblem,
    continual_peaks,
    peaks,
    poisson_problem,
    poisson_solution,
    poisson_source,
    toy_dataset,
)
from .registry import PaperFunction, sample_function
from .special import SPECIAL, real_sph_harm, special_dataset

__all__ = ["Dataset", "as_dataset", "from_function", "PaperFunction", "sample_function",
           "TOY", "toy_dataset", "FEYNMAN", "feynman_dataset", "SPECIAL", "special_dataset",
           "real_sph_harm", "PoissonProblem", "poisson_problem", "poisson_solution", "poisson_source",
           "PEAK_CENTERS", "peaks", "continual_peaks"]
