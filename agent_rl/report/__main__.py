"""``python -m agent_rl.report RUN_DIR ...``: the same as `agent-rl-report`."""

from agent_rl.report import main

main()
