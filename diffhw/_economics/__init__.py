"""The economics of a design: chip area (and its split into reticle-sized chiplets),
energy per token and power, die and package cost, TCO and carbon, all smooth in the
hardware and technology leaves."""
