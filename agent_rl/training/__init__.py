"""Everything that faces verl: the TaskRunner (`runner`) and trainer (`trainer`, verl's V1 sync trainer with
per-step rows), the one place that touches verl's registries (`verl_plugin`), the task tables verl's
dataloader reads (`data`), the GPU memory planner (`plan`), the CPU platform (`platform`) and the sampled
trajectories the trainer saves (`trajectories`)."""
