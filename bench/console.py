#!/usr/bin/env python
"""Console at fleet size: server time and size of the overview, of a
cluster page (first page of nodes), of the status API and of a band graph's
answer (one counter over an hour) with 1,000 nodes x 10 counters in the
database and their newest samples in a real memcached (issue 11, item 5;
targets: overview under 100 KiB and 0.2 s).

Server time is measured in-process through Django's test client (request to
response, no network), the best of ``--runs`` after one warm-up request.

Run:  .venv/bin/python bench/console.py [--nodes 1000] [--counters 10] [--runs 5]
The last line printed is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.evaluate import setup_django  # noqa: E402  (the same settings and database set-up)


def measure(client, url: str, runs: int) -> tuple[float, float]:
    client.get(url)  # warm-up: templates compiled, connections open
    best, size = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        best = min(best, time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        size = len(response.content)
    return best * 1000, size / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--counters", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from devservers.memcached import MemcachedServer

    workdir = Path(tempfile.mkdtemp(prefix="pyscaler-bench-console-"))
    memcached = MemcachedServer(memory_mb=256).start()
    try:
        setup_django(workdir, [memcached.address])
        from django.contrib.auth.models import User
        from django.test import Client
        from django.test.utils import setup_test_environment

        from tests.web.fleet import fill_samples, make_fleet

        setup_test_environment()
        fleet = make_fleet(nodes=args.nodes, counters=args.counters)
        fill_samples(fleet)
        client = Client()
        client.force_login(User.objects.create_superuser("bench", password="bench-pw-0123456789"))
        figures = {}
        for label, url in (("overview", "/"), ("cluster_page", f"/clusters/{fleet.cluster.name}/"),
                           ("api_clusters", "/api/v1/clusters"),
                           ("api_cluster", f"/api/v1/clusters/{fleet.cluster.name}"),
                           ("graph_band_1h", f"/api/v1/series?kind=ssh&counter={fleet.counters[0].pk}&range=1h"
                                             "&aggregate=band")):
            ms, kib = measure(client, url, args.runs)
            figures[f"{label}_ms"], figures[f"{label}_kib"] = round(ms, 1), round(kib, 1)
        for key, value in figures.items():
            print(f"{key:<24}{value:>10}")
        print(json.dumps(figures))
        return 0
    finally:
        memcached.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
