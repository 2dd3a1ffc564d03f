"""Run every registered benchmark suite and print the BENCHMARKS.md sections.

Each suite runs with its default models and folds through :func:`celltwin.benchmark.run_benchmark`
(every model-fold in its own process, so the memory numbers are honest) and writes its files to
``OUT/<suite>/``; the Markdown sections of all suites are printed and written to
``OUT/BENCHMARKS.md``, and ``OUT/index.html`` links every suite's ``report.html``. A suite whose data is not available here is reported as skipped with the
reason, and the others still run.

Usage::

    python benchmarks/run_all.py --out bench/                       # every suite
    python benchmarks/run_all.py --out bench/ --suites sim-doses,papalexi2021-heldout-ko
    python benchmarks/run_all.py --out bench/ --smoke --no-isolate  # seconds, for a check
    python benchmarks/run_all.py --out bench/ --baselines-only     # the simple models only
"""

from __future__ import annotations

import argparse
import html
import sys
import time
from pathlib import Path

from celltwin.benchmark import get_suite, role, run_benchmark, suites

#: Suites that need options only a user can give (their own signature files).
NEEDS_OPTIONS = {"signature-transfer"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--suites", default="", help="comma-separated suites (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny runs (cell suites)")
    parser.add_argument("--no-isolate", action="store_true", help="fit models in this process")
    parser.add_argument(
        "--baselines-only", action="store_true", help="run only each suite's baseline models"
    )
    args = parser.parse_args(argv)

    names = [s.strip() for s in args.suites.split(",") if s.strip()] or [
        s.name for s in suites() if s.name not in NEEDS_OPTIONS
    ]
    sections, failures = [], []
    for name in names:
        suite = get_suite(name)
        options = dict(suite.smoke) if args.smoke else {}
        start = time.perf_counter()
        print(f"# running {name} ...", file=sys.stderr, flush=True)
        models = [m for m in suite.models if role(m) == "baseline"] if args.baselines_only else None
        try:
            board = run_benchmark(
                name,
                models=models,
                out=args.out / name,
                seed=args.seed,
                progress=False,
                isolate=not args.no_isolate,
                **options,
            )
        except (OSError, ValueError, KeyError, ImportError) as err:
            failures.append(f"- {name}: not run ({type(err).__name__}: {err})")
            print(f"# {name} failed: {err}", file=sys.stderr, flush=True)
            continue
        seconds = time.perf_counter() - start
        print(f"# {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
        sections.append(board.to_markdown())
    text = "\n".join(sections)
    if failures:
        text += "\nSuites not run:\n\n" + "\n".join(failures) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "BENCHMARKS.md").write_text(text)
    links = "".join(
        f'<li><a href="{html.escape(n)}/report.html">{html.escape(n)}</a></li>'
        for n in names
        if (args.out / n / "report.html").exists()
    )
    (args.out / "index.html").write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>celltwin benchmarks</title>"
        f"</head><body><h1>celltwin benchmarks</h1><ul>{links}</ul></body></html>\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
