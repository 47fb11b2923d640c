"""Tools that tool environments (`agent_rl.envs.api.ToolEnvironment`) offer the model.

- `agent_rl.envs.tools.calls`: the answer format: Hermes tool calls (``<tool_call>{"name": …, "arguments":
  {…}}</tool_call>``, Qwen2.5's), parsed and checked against the tools' JSON schemas into a `ToolTurn`;
- `agent_rl.envs.tools.sandbox`: runs model-written code with no network and nothing of the host readable;
- `agent_rl.envs.tools.python`: the ``code_interpreter`` tool on that sandbox.
"""
