"""Console transports (serial, IPMI SOL, netconsole, command, replay): one module per transport.

Nothing is implemented here yet; this file only marks the package. Per DESIGN.md, connectors import
nothing of crashcart's but a small shared type, so the dependency direction stays
`tui -> crashcart -> connectors`.
"""
