"""Two `make bench` runs side by side: each row's rate in both and their ratio, for rows the
runs share (e.g. the same benchmark on two stacks, one after the other on one machine).

    python -m bench.compare OLD.json NEW.json --old_name "TFX 1.16" --new_name "TFX 1.21"
"""

from __future__ import annotations

import argparse
import json

# Rows whose rate is a time (lower is better); every other unit is a rate (higher is better).
TIME_UNITS = ("s wall",)


def compare_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """The rows of `new` that `old` also has (same section and name), with both rates and
    new/old as a speed-up (>1 is faster, whatever the unit)."""
    old_by_key = {(row["section"], row["name"]): row for row in old}
    rows = []
    for row in new:
        before = old_by_key.get((row["section"], row["name"]))
        if before is None:
            continue
        speedup = (before["rate"] / row["rate"] if row["unit"] in TIME_UNITS
                   else row["rate"] / before["rate"])
        rows.append({"section": row["section"], "name": row["name"], "unit": row["unit"],
                     "old": before["rate"], "new": row["rate"], "speedup": speedup})
    return rows


def markdown(rows: list[dict], old_name: str, new_name: str) -> str:
    lines = [f"| section | measurement | {old_name} | {new_name} | speed, new vs old |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['section']} | {row['name']} | {row['old']:,.1f} {row['unit']} | "
                     f"{row['new']:,.1f} {row['unit']} | {row['speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--old_name", default="old")
    parser.add_argument("--new_name", default="new")
    args = parser.parse_args(argv)
    runs = []
    for path in (args.old, args.new):
        with open(path) as f:
            runs.append(json.load(f))
    print(f"old: {runs[0]['machine']}; new: {runs[1]['machine']}\n")
    print(markdown(compare_rows(runs[0]["results"], runs[1]["results"]), args.old_name,
                   args.new_name), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
