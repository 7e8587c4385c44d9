"""Structure of a function from a trained model's derivatives: separability and symmetry tests,
and the tree they give (AI Feynman's recursion; KAN 2.0's hypothesis tests and tree converter).

    >>> tree = kanlab.structure.structure_tree(model, data.train_input)
    >>> print(tree)                 # f = product (a, b, c) ...
    >>> fig = tree.plot()
"""
from .derivatives import Derivatives, function_derivatives
from .hypotheses import (
                         SYMMETRIES,
                         TRANSFORMS,
                         additive_matrix,
                         additive_score,
                         fit_shift,
                         multiplicative_matrix,
                         multiplicative_score,
                         symmetry_score,
                         variable_importance,
)
from .plot import plot_tree
from .tree import DEFAULT_TRANSFORMS, StructureNode, structure_tree

__all__ = ["Derivatives", "function_derivatives", "TRANSFORMS", "SYMMETRIES", "DEFAULT_TRANSFORMS",
           "additive_matrix", "multiplicative_matrix", "fit_shift", "additive_score", "multiplicative_score",
           "symmetry_score", "variable_importance", "StructureNode", "structure_tree", "plot_tree"]
