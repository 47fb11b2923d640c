"""The locally built tiny model (`tiny_model`: a 0.5M-parameter Qwen2 with its own tokenizer, taught the
answer format); its tokenizer's text is the built-in environments' vocabulary (`agent_rl.envs.corpus`).
Nothing is downloaded."""
