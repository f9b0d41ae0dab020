"""The bench's sandbox process: the four departments with latency and padded water files.

`python -m bench.sandbox_server …` is started by bench/run.py, so the departments' CPU is
neither the gateway's nor the load generator's. It differs from `credit-gateway sandbox`
in two ways the bench needs: the water files are padded to a given number of rows (the
generator makes about one water row per ten subjects, and 100,000 rows would take a
million subjects, well over a minute to generate), and the codes of the generated
companies are written to a file, so the bench asks for subjects the departments know.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

from core.clock import Clock
from core.identity import org_code_check_digit, org_code_of, uscc_check_digit
from sandbox.courts import MAX_PAGE_SIZE, CourtsIndex
from sandbox.faults import DEFAULT_RATE_LIMIT_RPS, DEPARTMENTS, FaultState
from sandbox.generator import generate
from sandbox.model import Dataset, WaterGradeRow, WaterListRow, WaterPenaltyRow
from sandbox.runner import serve_forever


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.sandbox_server`; serves until terminated."""
    parser = argparse.ArgumentParser(prog="bench.sandbox_server", description=__doc__)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--subjects", type=int, required=True)
    parser.add_argument("--water-rows", type=int, required=True, help="rows of the 3 files")
    parser.add_argument("--latency-ms", type=float, required=True, help="every department")
    parser.add_argument("--info-out", type=Path, required=True, help="codes and counts (JSON)")
    for name in DEPARTMENTS:
        parser.add_argument(f"--{name}-port", type=int, required=True)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    dataset = generate(args.seed, args.subjects, Clock.from_env().today())
    generated_s = time.perf_counter() - started
    generated_rows = water_rows(dataset)
    pad_water(dataset, args.water_rows, random.Random(args.seed))
    # The latency is part of each department's baseline, so a faults reset keeps it.
    faults = {
        name: FaultState(
            latency_ms=args.latency_ms, rate_limit_rps=DEFAULT_RATE_LIMIT_RPS[name], seed=name
        )
        for name in DEPARTMENTS
    }
    info = {
        "subjects": len(dataset.companies),
        "generated_s": round(generated_s, 2),
        "water_rows_generated": generated_rows,
        "water_rows": water_rows(dataset),
        "codes": [company.uscc for company in dataset.companies],
        "courts_calls": courts_calls(dataset),
    }
    # Written before listening: the bench waits for the admin endpoint, then reads this.
    temporary = args.info_out.with_suffix(".tmp")
    temporary.write_text(json.dumps(info), encoding="utf-8")
    temporary.replace(args.info_out)
    ports = {name: getattr(args, f"{name}_port") for name in DEPARTMENTS}
    asyncio.run(serve_forever(dataset, "127.0.0.1", ports, faults))
    return 0


def courts_calls(dataset: Dataset) -> dict[str, int]:
    """Used for the bulk check's minimum: the courts calls of codes that need more than four.

    A code needs one call a page (at most 20 records, courts.md) of 失信 and of 限制消费,
    each under the USCC and under the organisation code, and at least the first page of
    each: four calls, or more for a code with a long history. Only codes above four are
    listed, so the file stays small.
    """
    index = CourtsIndex.build(dataset)
    needed: dict[str, int] = {}
    for company in dataset.companies:
        calls = sum(
            max(1, math.ceil(len(table.get(card) or []) / MAX_PAGE_SIZE))
            for table in (index.shixin, index.xgl)
            for card in (company.uscc, org_code_of(company.uscc))
        )
        if calls > 4:
            needed[company.uscc] = calls
    return needed


def water_rows(dataset: Dataset) -> int:
    """Rows of the three water files together; used to report what the gateway indexed."""
    return len(dataset.water_grades) + len(dataset.water_lists) + len(dataset.water_penalties)


def pad_water(dataset: Dataset, total: int, rng: random.Random) -> None:
    """Used at start: copies of generated water rows under new codes, until `total` rows.

    Each copy keeps the kind (grade, list entry, penalty) and the dates of a row drawn at
    random, so the three files grow in the generator's proportions and the gateway's index
    holds as many subjects as rows, as with a real department's files. The new codes are
    valid USCCs (the gateway checks them) that no company of the dataset holds.
    """
    taken = {company.uscc[8:17] for company in dataset.companies}
    originals: list[WaterGradeRow | WaterListRow | WaterPenaltyRow] = [
        *dataset.water_grades,
        *dataset.water_lists,
        *dataset.water_penalties,
    ]
    if not originals:
        raise ValueError("the dataset holds no water rows to copy")
    for number in range(total - water_rows(dataset)):
        row = rng.choice(originals)
        uscc = _fresh_uscc(rng, row.uscc[2:8], taken)
        if isinstance(row, WaterGradeRow):
            dataset.water_grades.append(replace(row, uscc=uscc))
        elif isinstance(row, WaterListRow):
            # Record numbers are unique in the file; the copies get their own.
            dataset.water_lists.append(replace(row, uscc=uscc, record_no=f"SLBENCH{number:07d}"))
        else:
            dataset.water_penalties.append(
                replace(row, uscc=uscc, dec_no=f"水罚（BENCH）{number:07d}号")
            )


def _fresh_uscc(rng: random.Random, region: str, taken: set[str]) -> str:
    """A valid USCC of a 企业 (91) in `region` whose organisation code is not yet taken."""
    while True:
        body = f"{rng.randrange(10**8):08d}"
        org = body + org_code_check_digit(body)
        if org not in taken:
            taken.add(org)
            first17 = "91" + region + org
            return first17 + uscc_check_digit(first17)


if __name__ == "__main__":
    sys.exit(main())
