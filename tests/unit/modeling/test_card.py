"""The model card's line of builders and settings (the method it was trained with)."""

from __future__ import annotations

from amplify_ml.modeling.train import _builders_line


def test_builders_line_names_each_builder_with_its_settings() -> None:
    builders = [
        {"name": "supply_level", "windows": [7, 30]},
        {"name": "device_profile"},
        {
            "name": "supply_usage",
            "windows": (30, 180),
            "calendar": True,
            "at_cutoff": True,
            "prev_fallback": False,
            "share_days": 365,
        },
    ]
    assert _builders_line(builders) == (
        "`supply_level` (windows 7, 30), `device_profile`, "
        "`supply_usage` (windows 30, 180; calendar; at_cutoff; share_days 365)"
    )
    assert _builders_line([]) == "-"
