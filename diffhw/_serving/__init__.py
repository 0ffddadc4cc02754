"""Serving under load: continuous batching with chunked Prefill, SLO percentiles,
speculative decoding, prefix caching and disaggregated Prefill and Decode."""
