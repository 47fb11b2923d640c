"""What the base algorithms (`agent_rl.algos`) and the methods (`agent_rl.methods`) both read: the batch
as step rows (`step_rows`: trajectory, turn, group, outcome, penalty per row) and the per-turn and segment
utilities over them (`turns`). Pure tensor functions; imports nothing of agent_rl above it."""
