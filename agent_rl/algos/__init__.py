"""The base algorithms' advantages on per-step rows: GRPO's group statistics (`grpo`), GiGPO's step-level
groups (`gigpo`), DAPO's bounded dynamic sampling (`sampling`). Pure tensor functions over
`agent_rl.rows`; the methods (`agent_rl.methods`) transform what these return."""
