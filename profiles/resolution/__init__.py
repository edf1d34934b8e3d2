"""Resolution: scores and decisions -> clusters -> profiles with stable ids."""
