"""Payment service provider simulator: settles, fails or leaves unclaimed a share of instructions."""
