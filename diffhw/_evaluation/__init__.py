"""The evaluation that joins workload, hardware, timing and economics into `Metrics`
(`evaluate`, `max_throughput`); the `Design` bundle with its dotted parameter paths and
named metric values (what the tools vary and read); and the CLI's JSON dictionary."""
