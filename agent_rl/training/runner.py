"""The Ray actor that runs one training job: verl's V1 TaskRunner, with agent_rl's trainer.

verl's ``TaskRunnerV1`` is a ``@ray.remote`` class; Ray forbids subclassing the decorated class, so we
subclass the undecorated one (``__ray_actor_class__``) and decorate ours. ``run`` executes inside the
TaskRunner process, where verl picks the trainer class from its registry; `install_trainer` points the
"sync" entry of that registry at `agent_rl.training.trainer.AgentTrainer` first.
"""

from __future__ import annotations

import ray
from verl.trainer.main_ppo import TaskRunnerV1


@ray.remote(num_cpus=1)
class TaskRunner(TaskRunnerV1.__ray_actor_class__):
    def run(self, config):
        from agent_rl.training.verl_plugin import install_trainer

        install_trainer()
        return super().run(config)
