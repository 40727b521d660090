"""How often `POST /retrieve` returns the right model first, for every photo of the demo catalogue's test split.

    .venv/bin/photo2cad demo &                                   # serves http://127.0.0.1:8000 (builds what is missing)
    .venv/bin/python benchmarks/demo_retrieval.py                # posts the 240 test photos, prints Top1/Top10 rates
    .venv/bin/python benchmarks/demo_retrieval.py --start        # or start a server on the demo index itself

This is the README's demo figure measured the way a user meets it: over HTTP, through the service's own decoding,
encoder and index, not through the evaluation code.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_load import free_port, start_server  # noqa: E402

from photo2cad.weights.bundled import DEFAULT_AMVML  # noqa: E402


def test_photos(catalogue: Path) -> list[dict[str, str]]:
    with (catalogue / "queries.csv").open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["split"] == "test"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("photo2cad-demo"), help="`photo2cad demo --workdir`")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a running service (ignored with --start)")
    parser.add_argument("--start", action="store_true", help="start a server on WORKDIR/index with the bundled weights")
    parser.add_argument("--rerank", action="store_true", help="ask for the query-conditioned view re-ranking")
    args = parser.parse_args()

    server = None
    url = args.url
    if args.start:
        port = free_port()
        server = start_server(args.workdir / "index", DEFAULT_AMVML, port, {})
        url = f"http://127.0.0.1:{port}"
    hits: dict[str, list[int]] = defaultdict(list)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for row in test_photos(args.workdir / "catalogue"):
                photo = (args.workdir / "catalogue" / row["image"]).read_bytes()
                response = client.post(
                    "/retrieve",
                    files={"photo": (Path(row["image"]).name, photo, "image/jpeg")},
                    data={"top_k": "10", "rerank": str(args.rerank).lower()},
                )
                response.raise_for_status()
                ranked = [result["shape_id"] for result in response.json()["results"]]
                rank = ranked.index(row["shape_id"]) + 1 if row["shape_id"] in ranked else 11
                hits[row["category"]].append(rank)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    every = [rank for ranks in hits.values() for rank in ranks]
    summary = {
        "photos": len(every),
        "rerank": args.rerank,
        "top1": round(sum(r == 1 for r in every) / len(every), 3),
        "top10": round(sum(r <= 10 for r in every) / len(every), 3),
        "top1_per_category": {
            category: round(sum(r == 1 for r in ranks) / len(ranks), 3) for category, ranks in sorted(hits.items())
        },
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
