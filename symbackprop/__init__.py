"""symbackprop: proves backpropagation.

Builds a feed-forward network and its loss in SymPy, derives every gradient twice — by direct
differentiation and by the textbook backprop recurrences — and proves the two equal.
"""

from .network import Network, NetworkSpec, SpecError
from .prove import Decider, NetworkProof, Verdict, prove_network
from .general import prove_general

__all__ = ["Network", "NetworkSpec", "SpecError", "Decider", "NetworkProof", "Verdict", "prove_network", "latex",
           "prove_general"]
__version__ = "0.1.0"

from . import latex  # noqa: E402  (an output: attaches the notebook displays, _repr_latex_)
