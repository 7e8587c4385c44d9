"""Datasets: the container, synthetic data from functions, and the KAN paper's problems."""
from .core import Dataset, as_dataset, from_function

__all__ = ["Dataset", "as_dataset", "from_function"]
