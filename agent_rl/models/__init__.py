"""The locally built tiny model (`tiny_model`: a 0.5M-parameter Qwen2 with its own tokenizer, taught the
answer format) and the text its tokenizer is trained on (`corpus`). Nothing is downloaded."""
