"""Modal screens: help, the SysRq palette, confirmations."""
