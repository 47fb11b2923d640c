"""The entry points: ``agent-rl`` (`train`), ``agent-rl-eval`` (`evaluate`) and the console they print
to (`console`). They compose the Hydra config, check it before Ray starts, build what a run needs (the tiny
model, the task tables) and hand the run to `agent_rl.training`."""
