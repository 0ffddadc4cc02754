"""The workload algebra, hardware-free: the model (`Transformer`), number formats
(`Precision`), the request mix and sharding (`Workload`, `Parallelism`), and the FLOPs
and bytes of each operator group of a Decode step or a Prefill pass."""
