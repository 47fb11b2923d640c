"""Entropy methods as pure tensor functions (no verl, no Ray, no config objects), and their wiring.

Each method's maths is ``<name>.py``; ``<name>_method.py`` beside it is the class the trainer calls
(:mod:`~agent_rl.methods.api`: the hooks, the registry, composition). The wiring imports verl and
TransferQueue only inside the hooks that use them; so do the two modules that face the actor workers and
the trainer's batch: :mod:`~agent_rl.methods.losses` (EPO's and SPEAR's actor losses) and
:mod:`~agent_rl.methods.replay` (SPEAR's replay rows). Per-step row helpers are below both the methods
and the base algorithms, in :mod:`agent_rl.rows`.

Modules: :mod:`~agent_rl.methods.empg` (EMPG,
arXiv 2509.09265), :mod:`~agent_rl.methods.aem` (AEM, arXiv 2605.00425), :mod:`~agent_rl.methods.epo`
(EPO, arXiv 2509.22576), :mod:`~agent_rl.methods.spear` (SPEAR, arXiv 2509.22601).
"""

from agent_rl.methods import aem, empg, epo, spear
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
]
