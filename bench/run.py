"""Benchmark kinto-changes against real Kinto servers on 127.0.0.1.

    python bench/run.py           # N = 100, 1,000, 10,000 (about 20 minutes)
    python bench/run.py --quick   # N = 100, 1,000 (about 2.5 minutes)

Starts, per backend (memory, PostgreSQL), one Kinto with the plugin and the
same Kinto without it (and, for the ``private`` metrics, the plugin with
nothing configured; for ``since`` and ``notmod``, the plugin held at the
smallest N), fills them with N monitored collections and a reference
collection of N records through ``/batch``, then measures each metric round
after round, alternating the variants, and keeps the median of the rounds.
Last, new memory servers filled straight to the largest N give the memory
target's peak RSS. Prints one markdown table and the targets, writes the JSON
and draws the pictures of docs/performance.rst (``bench/plots.py``). The
client runs on the same machine as the servers and the database.
"""

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import plots, report, scenarios, servers  # noqa: E402


BENCH = ROOT / "bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 100, 1,000; short rounds")
    parser.add_argument("--sizes", type=lambda v: [int(n) for n in v.split(",")])
    parser.add_argument("--rounds", type=int, help="rounds per N (median kept)")
    parser.add_argument("--duration", type=float, help="seconds per measurement")
    parser.add_argument("--backends", default="memory,postgresql")
    parser.add_argument(
        "--metrics",
        default=",".join(scenarios.GROUPS),
        help=f"a subset of {','.join(scenarios.GROUPS)}",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KINTO_CHANGES_BENCH_DB", servers.DEFAULT_DATABASE_URL),
        help="dropped and re-created; the other servers use <name>_plain, _open and _small",
    )
    args = parser.parse_args(argv)
    custom = (
        args.sizes or args.rounds or args.duration or args.metrics != parser.get_default("metrics")
    )
    args.mode = "custom" if custom else "quick" if args.quick else "full"
    args.sizes = args.sizes or ([100, 1000] if args.quick else [100, 1000, 10000])
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.duration = args.duration or (0.3 if args.quick else 1.0)
    args.backends = args.backends.split(",")
    args.metrics = args.metrics.split(",")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    if "postgresql" in args.backends:
        reason = servers.postgresql_available(args.database_url)
        if reason:
            print(f"PostgreSQL unreachable ({reason}): memory only.", file=sys.stderr)
            args.backends.remove("postgresql")
    results = report.Results(args.backends, args.sizes)
    timing = scenarios.Timing(args.duration)

    with servers.running_variants(args.backends, args.database_url, kinds(args)) as variants:
        trios = {backend: trio_of(variants, backend) for backend in args.backends}
        small = [v for v in variants if v.kind == "small"]
        growing = [v for v in variants if v.kind != "small"]
        servers.grow(small, args.sizes[0])
        for size in args.sizes:
            log(started, f"filling to N={size:,}")
            servers.grow(growing, size)
            record_rss(results, variants, size, "filled")
            for backend, trio in trios.items():
                scenarios.check_contents(trio, size)
                if trio.unconfigured:
                    scenarios.check_private(trio, size)
                if not scenarios.changeset_served(trio.plugin):
                    results.unavailable.add((backend, size, "changeset"))
            log(started, f"measuring N={size:,}")
            measure_rounds(results, trios, size, args.rounds, timing, args.metrics)
            record_rss(results, variants, size, "end")
    if "memory" in args.backends:
        largest = args.sizes[-1]
        log(started, f"filling memory servers from scratch to N={largest:,}")
        fresh_rss(results, args.database_url, largest)
    log(started, "done")

    table = report.markdown_table(results)
    print(table)
    print()
    print("Targets:")
    for target in report.targets(results):
        print(target.line())
    save(args, results, table, meta(args, time.monotonic() - started))
    return 0


def kinds(args: argparse.Namespace) -> tuple[str, ...]:
    """The servers the metrics need: ``unconfigured`` serves ``private``,
    ``noisy`` and the writes, ``small`` serves ``since`` and ``notmod`` only."""
    needed = {
        "unconfigured": {"private", "noisy", "write-1", "write-8"},
        "small": {"since", "notmod"},
    }
    return tuple(k for k in servers.KINDS if k not in needed or needed[k] & set(args.metrics))


def trio_of(variants: list, backend: str) -> scenarios.Trio:
    by_kind = {v.kind: v for v in variants if v.backend == backend}
    return scenarios.Trio(
        by_kind["plugin"], by_kind["no plugin"], by_kind.get("unconfigured"), by_kind.get("small")
    )


def measure_rounds(results, trios: dict, size: int, rounds: int, timing, metrics) -> None:
    """Warm up, then ``rounds`` rounds; inside a group, the order alternates."""
    warm_up = scenarios.Timing(duration=min(0.2, timing.duration), min_requests=2)
    for round_number in range(-1, rounds):
        for backend, trio in trios.items():
            for metric, group in scenarios.GROUPS.items():
                if metric not in metrics or (backend, size, metric) in results.unavailable:
                    continue
                order = list(group.items())
                if round_number % 2:
                    order.reverse()
                for variant, measurement in order:
                    if round_number < 0:
                        measurement(trio, warm_up)
                    else:
                        sample = measurement(trio, timing)
                        results.add(backend, size, metric, variant, sample)


def fresh_rss(results, database_url: str, size: int) -> None:
    """The peak RSS of new memory servers, given the same filling requests and nothing else.

    (On PostgreSQL the data lives in the database, not in the servers: their
    peaks, read on the servers of the rounds, do not grow with N.)
    """
    with servers.running_variants(["memory"], database_url, ("plugin", "no plugin")) as variants:
        servers.grow(variants, size)
        record_rss(results, variants, size, "fresh")
        # After the reading: it GETs the whole list.
        scenarios.check_contents(trio_of(variants, "memory"), size)


def record_rss(results, variants: list, size: int, phase: str) -> None:
    for variant in variants:
        key = (variant.backend, size, variant.kind, phase)
        results.rss_kib[key] = variant.server.peak_rss_kib()


def meta(args: argparse.Namespace, elapsed: float) -> dict:
    import kinto

    info = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": args.mode,
        "sizes": args.sizes,
        "rounds": args.rounds,
        "seconds_per_measurement": args.duration,
        "elapsed_seconds": round(elapsed),
        "python": platform.python_version(),
        "kinto": kinto.__version__,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "waitress_threads": 4,
        "batch_max_requests": servers.BATCH_SIZE,
    }
    if "postgresql" in args.backends:
        info["postgresql"] = servers.run_sql(args.database_url, "SHOW server_version")
    return info


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "")


def save(args, results: report.Results, table: str, info: dict) -> None:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    mode = info["mode"]
    path = BENCH / "results" / f"{mode}-{stamp}.json"
    report.write_json(path, results, info)
    (BENCH / "results" / f"{mode}-{stamp}.md").write_text(table + "\n")
    # The full run's pictures are the ones docs/performance.rst shows; other runs keep theirs.
    images = plots.IMAGES if mode == "full" else BENCH / "results" / mode
    drawn = plots.draw_bench(report.to_json(results, info), images)
    print(f"\nJSON: {path.relative_to(ROOT)}")
    print(
        f"Pictures: {images.relative_to(ROOT)}/" if drawn else "Pictures: matplotlib not installed"
    )
    print(f"Took {info['elapsed_seconds']} s")


def log(started: float, message: str) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
