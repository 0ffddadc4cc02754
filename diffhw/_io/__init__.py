"""The loaders and writers: shipped presets and users' files (hardware and profile TOML,
Hugging Face ``config.json``, technology tables, measurement CSVs) in, checked and
converted to SI, out as the physics pytrees (`Hardware`, `Transformer`, `Technology`,
`Design`); and figures out (`_plot`). The only place that reads a file."""
