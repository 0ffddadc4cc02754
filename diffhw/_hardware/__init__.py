"""The hardware and its resources: one chip (`Hardware`: compute peaks, main memory,
links) and its calibration `Profile`, extra memory tiers and data placement, near-memory
logic, the interconnect (topologies, collective algorithms, endpoint costs, and the
collectives of a `Hardware`), and the technology constants (`Technology`) that price
and power it. Pure computation: the loaders in `diffhw._io` build these pytrees."""
