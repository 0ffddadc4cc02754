"""The composition of times: the roofline of each operator group (compute against
memory, over the memory tiers and near-memory logic), exposed communication and
overheads, summed into a Decode step, TPOT, and the chunked, pipelined Prefill (TTFT);
and what one chip stores."""
