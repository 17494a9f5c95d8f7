#!/usr/bin/env python3
"""What the body check costs: µs per ``Template.check_body`` for every valid example of every
shipped template and for the fullest data-exchange body (60 KB), in three columns measured in the
same run: jsonschema's own validator (Python ``re``, unmetered: the check before issue 20
bounded it), the metered jsonschema check alone (RE2 patterns, every keyword metered, our
``uniqueItems``), and ``check_body`` as it runs now (a valid body by the compiled check of
``hotline.norms.fastschema`` where the template has one, issue 18). Ratios: now against each.
A benchmark, not a test: it prints figures and never fails.

Run: ``.venv/bin/python scripts/bench_templates.py [--seconds 0.3]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hotline.canonical import dumps
from hotline.norms.bodyschema import FORMAT_CHECKER, first_error
from hotline.norms.files import load_templates, shipped_dir
from hotline.norms.template import Template
from tests.template_examples import EXAMPLES, Case


def per_call(fn: Any, seconds: float) -> float:
    """Median µs per call of ``fn`` over five runs of about ``seconds / 5`` each."""
    runs = []
    for _ in range(5):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            fn()
            calls += 1
        runs.append(elapsed / calls * 1e6)
    return statistics.median(runs)


def fullest_data_exchange(example: dict[str, Any]) -> dict[str, Any]:
    line = example["tables"][0]["lines"][1]
    body = copy.deepcopy(example)
    body["tables"] = [{"table": "military_forces", "lines": []}]
    lines = body["tables"][0]["lines"]
    while len(dumps(body)) < 60_000:
        lines.append({**line, "line": len(lines) + 1})
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="per body and checker")
    args = parser.parse_args()
    held = load_templates(shipped_dir())
    now = datetime.now(UTC)
    cases: list[tuple[str, Template, dict[str, Any]]] = []
    for template_id, make in sorted(EXAMPLES.items()):
        template = held.latest(template_id)
        assert template is not None
        cases += [(f"{template_id}: {c.name}", template, c.body) for c in make(now) if isinstance(c, Case)]
    de = next(t for name, t, _ in cases if name.startswith("data-exchange"))
    first = next(b for name, _, b in cases if name.startswith("data-exchange"))
    cases.append(("data-exchange: 60 KB, 270 lines", de, fullest_data_exchange(first)))

    print(f"{'body':46s} {'unmetered':>10s} {'metered':>10s} {'now µs':>10s} {'/metered':>9s} "
          f"{'/unmetered':>11s}")
    to_metered, to_unmetered = [], []
    for name, template, body in cases:
        before = jsonschema.Draft202012Validator(template.fields, format_checker=FORMAT_CHECKER)
        metered = replace(template._validator, valid=None)  # the metered check alone
        old = per_call(lambda v=before, b=body: best_match(v.iter_errors(b)), args.seconds)
        slow = per_call(lambda v=metered, b=body: first_error(v, b), args.seconds)
        new = per_call(lambda t=template, b=body: t.check_body(b), args.seconds)
        to_metered.append(new / slow)
        to_unmetered.append(new / old)
        compiled = "" if template._validator.valid is not None else "  (no compiled check)"
        print(f"{name[:46]:46s} {old:10.1f} {slow:10.1f} {new:10.1f} {new / slow:9.2f} "
              f"{new / old:11.2f}{compiled}")
    for what, ratios in (("metered", to_metered), ("unmetered", to_unmetered)):
        print(f"now / {what}: median {statistics.median(ratios):.2f}, range "
              f"{min(ratios):.2f}-{max(ratios):.2f}")


if __name__ == "__main__":
    main()
