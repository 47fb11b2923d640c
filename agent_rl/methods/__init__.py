"""Entropy methods as pure tensor functions (no verl, no Ray, no config objects), and their wiring.

Each method's maths is ``<name>.py``; ``<name>_method.py`` beside it is the class the trainer calls
(:mod:`~agent_rl.methods.api`: the hooks, the registry, composition). The wiring imports verl and
TransferQueue only inside the hooks that use them.

Modules: :mod:`~agent_rl.methods.turns` (per-step row helpers), :mod:`~agent_rl.methods.empg` (EMPG,
arXiv 2509.09265), :mod:`~agent_rl.methods.aem` (AEM, arXiv 2605.00425), :mod:`~agent_rl.methods.epo`
(EPO, arXiv 2509.22576), :mod:`~agent_rl.methods.spear` (SPEAR, arXiv 2509.22601).
"""

from agent_rl.methods import aem, empg, epo, spear, turns
from agent_rl.methods.aem import aem_advantages, aem_weights, relative_surprisal
from agent_rl.methods.empg import empg_advantages, empg_terms
from agent_rl.methods.epo import EntropyHistory, epo_loss, epo_regularizer
from agent_rl.methods.spear import SpearReplayBuffer

__all__ = [
    "EntropyHistory",
    "SpearReplayBuffer",
    "aem",
    "aem_advantages",
    "aem_weights",
    "empg",
    "empg_advantages",
    "empg_terms",
    "epo",
    "epo_loss",
    "epo_regularizer",
    "relative_surprisal",
    "spear",
    "turns",
]
