"""Entropy methods as pure tensor functions (no verl, no Ray, no config objects)."""
