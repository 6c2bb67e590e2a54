"""`bench.compare`: rows two benchmark runs share, as speed-ups whatever the unit."""

import pytest

from bench.compare import compare_rows, markdown


def test_shared_rows_become_speedups_for_rates_and_for_times():
    old = [{"section": "training", "name": "MoeModel", "unit": "examples/s", "rate": 100.0},
           {"section": "pipeline", "name": "make run-local", "unit": "s wall", "rate": 90.0},
           {"section": "input", "name": "gone", "unit": "examples/s", "rate": 1.0}]
    new = [{"section": "training", "name": "MoeModel", "unit": "examples/s", "rate": 150.0},
           {"section": "pipeline", "name": "make run-local", "unit": "s wall", "rate": 60.0},
           {"section": "serving", "name": "new row", "unit": "requests/s", "rate": 5.0}]
    rows = compare_rows(old, new)
    assert [(r["name"], r["speedup"]) for r in rows] == [
        ("MoeModel", pytest.approx(1.5)), ("make run-local", pytest.approx(1.5))]
    table = markdown(rows, "TFX 1.16", "TFX 1.21")
    assert "| training | MoeModel | 100.0 examples/s | 150.0 examples/s | 1.50x |" in table
