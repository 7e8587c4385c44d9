"""kanlab: Kolmogorov-Arnold Networks, exact and fast, with the tools ML users know."""
from . import datasets, structure
from .datasets import Dataset
from .derivatives import input_jet, laplacian
from .discovery import discover
from .io import load, save
from .layer import KANLayer
from .network import KAN, KANConfig, LayerActivations
from .training import History, TrainingDiverged, fit

__version__ = "0.1.0"

__all__ = ["KAN", "KANConfig", "KANLayer", "LayerActivations", "Dataset", "datasets", "fit",
           "History", "TrainingDiverged", "load", "save", "input_jet", "laplacian", "discover", "structure",
           "__version__"]
