"""Point-in-time features and training sets over the lake (DuckDB by default, or Spark).

    from amplify_ml.features import monthly, training_set
    ts, meta = training_set("refresh_due", lake, cutoffs=monthly("2025-01-01", "2025-12-01"))

Builders are pure functions over Ibis tables (:mod:`amplify_ml.features.builders`);
feature-set specs live in ``features/<model>.v<N>.toml``. Nothing happens at import
beyond registering the functions.
"""

from amplify_ml.features.cutoffs import as_cutoffs, monthly
from amplify_ml.features.engine import spark_session
from amplify_ml.features.graph import REGISTRY
from amplify_ml.features.spec import MODELS, FeatureSetSpec, load_spec
from amplify_ml.features.training import (
    FeatureBuilder,
    FeatureSetMeta,
    FeatureWarning,
    feature_frame,
    read_training_set,
    training_set,
    write_training_set,
)

__all__ = [
    "MODELS",
    "REGISTRY",
    "FeatureBuilder",
    "FeatureSetMeta",
    "FeatureSetSpec",
    "FeatureWarning",
    "as_cutoffs",
    "feature_frame",
    "load_spec",
    "monthly",
    "read_training_set",
    "spark_session",
    "training_set",
    "write_training_set",
]
