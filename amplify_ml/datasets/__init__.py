"""The synthetic world: partner data packs generated from known mechanisms, with an oracle.

>>> from amplify_ml.datasets import generate  # doctest: +SKIP
>>> world = generate("tiny", seed=1, out="world")  # doctest: +SKIP

``generate`` writes ``OUT/packs/vendor`` (partners, products, intent_signals, market),
``OUT/packs/<partner_id>`` (a partner's main pack), ``OUT/packs/<partner_id>.late`` (late
readings and install_base updates of a few partners), ``OUT/oracle/<model>.parquet`` (true
probabilities and realised labels) and ``OUT/world.json``. The mechanisms and the oracle's
definitions are documented in ``MECHANISMS.md`` beside this file.
"""

from amplify_ml.datasets.config import SCALES, WorldConfig
from amplify_ml.datasets.world import WorldSummary, generate

__all__ = ["SCALES", "WorldConfig", "WorldSummary", "generate"]
