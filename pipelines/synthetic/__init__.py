"""Seeded synthetic travel data: contract objects plus the truth of who is who.

See `generate` for what varies and how often; `upt generate --help` for the command.
"""

from pipelines.synthetic.generate import GeneratorConfig, generate, write_dataset

__all__ = ["GeneratorConfig", "generate", "write_dataset"]
