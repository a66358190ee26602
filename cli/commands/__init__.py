"""Client commands of ``nas`` (datasets, experiments, models): they talk to a server through ``nas_client``."""
