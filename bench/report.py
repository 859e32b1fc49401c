"""Summaries of a run: the markdown table, the targets and the JSON."""

import json
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bench.loadgen import Sample


BACKEND_NAMES = {"memory": "memory", "postgresql": "PostgreSQL"}
TARGETS = tomllib.loads((Path(__file__).parent / "targets.toml").read_text())["target"]

# (metric, variant) -> label in the table.
LABELS = {
    ("full", "list"): "full: list",
    ("full", "reference"): "full: /records reference",
    ("full", "reference, no plugin"): "full: /records reference, no plugin",
    ("since", "list"): "since: list ?_since=ETag",
    ("since", "list, smallest N"): "since: same, server holding the smallest N",
    ("notmod", "list"): "notmod: list 304",
    ("notmod", "list, smallest N"): "notmod: same, server holding the smallest N",
    ("changeset", "list"): "changeset: list",
    ("changeset", "collection"): "changeset: reference collection",
    ("write-1", "plugin"): "write, 1 client: plugin",
    ("write-1", "default"): "write, 1 client: plugin, nothing configured",
    ("write-1", "no plugin"): "write, 1 client: no plugin",
    ("write-8", "plugin"): "write, 8 clients: plugin",
    ("write-8", "default"): "write, 8 clients: plugin, nothing configured",
    ("write-8", "no plugin"): "write, 8 clients: no plugin",
    ("noisy", "plugin"): "noisy neighbour: write while another tenant toggles, plugin",
    ("noisy", "no plugin"): "noisy neighbour: same, no plugin",
    ("private", "full, reader"): "private: full, reader, unconfigured (100 entries)",
    ("private", "full, configured"): "private: full, anonymous, configured (N entries)",
    ("private", "since, reader"): "private: since, reader, unconfigured",
    ("private", "since, configured"): "private: since, anonymous, configured",
}
REFERENCE = ("full", "reference")
# When the peak RSS is read. ``fresh``: servers started for this reading
# alone and filled straight to the largest N with the same requests, so that
# both hold the same data and received the same requests, nothing else (the
# target). ``filled`` and ``end``: the servers of the rounds, once filled to N
# (after the rounds of the smaller N, in which the plugin's server also
# served its lists and changesets) and after N's rounds.
RSS_PHASES = {
    "fresh": "peak RSS filled from scratch",
    "filled": "peak RSS once filled, after smaller N",
    "end": "peak RSS after the rounds",
}
# (metric, variant) -> what its ratio divides it by.
RATIOS = {
    ("full", "list"): REFERENCE,
    ("full", "reference"): ("full", "reference, no plugin"),
    # Measured in the same rounds on a server holding the smallest N.
    ("since", "list"): ("since", "list, smallest N"),
    ("notmod", "list"): ("notmod", "list, smallest N"),
    ("changeset", "list"): REFERENCE,
    ("changeset", "collection"): REFERENCE,
    ("write-1", "plugin"): ("write-1", "no plugin"),
    ("write-8", "plugin"): ("write-8", "no plugin"),
    ("write-1", "default"): ("write-1", "no plugin"),
    ("write-8", "default"): ("write-8", "no plugin"),
    ("private", "full, reader"): ("private", "full, configured"),
    ("private", "since, reader"): ("private", "since, configured"),
    ("noisy", "plugin"): ("noisy", "no plugin"),
}
# Ratios of median latencies (lower is better), not of req/s.
LATENCY_RATIOS = {("noisy", "plugin")}


@dataclass
class Results:
    """Every sample of a run, by ``(backend, N, metric, variant)``."""

    backends: list[str]
    sizes: list[int]
    samples: dict = field(default_factory=dict)
    unavailable: set = field(default_factory=set)  # (backend, N, metric)
    # (backend, N, "plugin"|"no plugin", phase) -> peak RSS; phase: one of RSS_PHASES.
    rss_kib: dict = field(default_factory=dict)

    def add(self, backend: str, size: int, metric: str, variant: str, sample: Sample) -> None:
        self.samples.setdefault((backend, size, metric, variant), []).append(sample)

    def rps(self, backend: str, size: int, key: tuple[str, str]) -> float | None:
        samples = self.samples.get((backend, size, *key))
        return statistics.median(s.rps for s in samples) if samples else None

    def latency(self, backend: str, size: int, key: tuple[str, str]) -> float | None:
        samples = self.samples.get((backend, size, *key))
        return statistics.median(s.median_ms for s in samples) if samples else None

    def ratio(self, backend: str, size: int, key: tuple[str, str]) -> float | None:
        base = RATIOS.get(key)
        if base is None:
            return None
        measure = self.latency if key in LATENCY_RATIOS else self.rps
        value, reference = measure(backend, size, key), measure(backend, size, base)
        return value / reference if value and reference else None

    def rss_ratio(self, backend: str, size: int, phase: str) -> float | None:
        plugin = self.rss_kib.get((backend, size, "plugin", phase))
        plain = self.rss_kib.get((backend, size, "no plugin", phase))
        return plugin / plain if plugin and plain else None


def ratio_meaning(key: tuple[str, str], sizes: list[int]) -> str:
    base = RATIOS.get(key)
    if base is None:
        return ""
    if key[0] in ("since", "notmod"):
        return f"req/s ÷ same at N={sizes[0]:,}, same rounds"
    if base == REFERENCE:
        return "req/s ÷ /records reference"
    if key[0] == "private":
        return "req/s reader ÷ configured"
    if key in LATENCY_RATIOS:
        return "median ms, plugin ÷ no plugin"
    return "plugin ÷ no plugin"


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:.1f}{unit}" if value >= 10 else f"{value:.2f}{unit}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def markdown_table(results: Results) -> str:
    """One table: metric × N × backend, with ratios."""
    header = ["metric", "N"]
    for backend in results.backends:
        name = BACKEND_NAMES[backend]
        header += [f"{name} req/s", f"{name} median ms", f"{name} ratio"]
    header.append("ratio is")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label in LABELS.items():
        for size in results.sizes:
            row = [label, f"{size:,}"]
            for backend in results.backends:
                if (backend, size, key[0]) in results.unavailable:
                    row += ["n/a", "n/a", ""]
                    continue
                row += [
                    _number(results.rps(backend, size, key)),
                    _number(results.latency(backend, size, key)),
                    _ratio(results.ratio(backend, size, key)),
                ]
            row.append(ratio_meaning(key, results.sizes))
            lines.append("| " + " | ".join(row) + " |")
    lines += _rss_rows(results)
    return "\n".join(lines)


def _rss_rows(results: Results) -> list[str]:
    """Peak RSS of each server; the unconfigured one holds no reference
    records, so only the plugin's is compared (with the server without it).
    """
    lines = []
    for phase, label in RSS_PHASES.items():
        for kind in ("plugin", "no plugin", "unconfigured"):
            for size in results.sizes:
                if not any((b, size, kind, phase) in results.rss_kib for b in results.backends):
                    continue
                row = [f"{label}: {kind}", f"{size:,}"]
                for backend in results.backends:
                    kib = results.rss_kib.get((backend, size, kind, phase))
                    ratio = results.rss_ratio(backend, size, phase) if kind == "plugin" else None
                    row += [_number(kib and kib / 1024, " MiB"), "", _ratio(ratio)]
                row.append("plugin ÷ no plugin (MiB)" if kind == "plugin" else "")
                lines.append("| " + " | ".join(row) + " |")
    return lines


@dataclass(frozen=True)
class Target:
    description: str
    value: float | None
    threshold: float
    at_most: bool = False

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.threshold if self.at_most else self.value >= self.threshold

    def line(self) -> str:
        status = {True: "MET ", False: "MISSED", None: "n/a "}[self.met]
        sign = "≤" if self.at_most else "≥"
        value = "n/a" if self.value is None else f"{self.value:.3f}"
        return f"- {status} {self.description}: {value} (target {sign} {self.threshold})"


def targets(results: Results) -> list[Target]:
    """The targets of ``targets.toml``, on the backends of the run."""
    sizes = {"largest": results.sizes[-1], "smallest": results.sizes[0]}
    found = []
    for target in TARGETS:
        backend, size, key = target["backend"], sizes[target["n"]], target["metric"]
        if backend not in results.backends:
            continue
        if key == "rss":
            value = results.rss_ratio(backend, size, target["variant"])
        else:
            value = results.ratio(backend, size, (key, target["variant"]))
        text = target["description"].format(n=f"{size:,}", smallest=f"{sizes['smallest']:,}")
        description = f"{BACKEND_NAMES[backend]}: {text}"
        found.append(Target(description, value, target["threshold"], target.get("at_most", False)))
    return found


def to_json(results: Results, meta: dict) -> dict:
    samples = [
        {
            "backend": backend,
            "n": size,
            "metric": metric,
            "variant": variant,
            "rps": results.rps(backend, size, (metric, variant)),
            "median_ms": results.latency(backend, size, (metric, variant)),
            "ratio": results.ratio(backend, size, (metric, variant)),
            "rounds": [
                {"rps": s.rps, "median_ms": s.median_ms, "count": s.count, "clients": s.clients}
                for s in rounds
            ],
        }
        for (backend, size, metric, variant), rounds in results.samples.items()
    ]
    return {
        "meta": meta,
        "samples": samples,
        "unavailable": [
            {"backend": b, "n": n, "metric": m} for b, n, m in sorted(results.unavailable)
        ],
        "peak_rss_kib": [
            {"backend": b, "n": n, "variant": v, "phase": phase, "kib": kib}
            for (b, n, v, phase), kib in sorted(results.rss_kib.items())
        ],
        "targets": [
            {
                "description": t.description,
                "value": t.value,
                "threshold": t.threshold,
                "met": t.met,
            }
            for t in targets(results)
        ],
    }


def write_json(path: Path, results: Results, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(results, meta), indent=2) + "\n")
