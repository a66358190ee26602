"""The ``nas`` console script."""
