"""Address registry figures: allocations per second on each backend (one process, and
BENCH_ADDRESS_PROCESSES processes at once), each allocation one transaction, as the address
module makes it."""
import json
import os
import subprocess
import tempfile

import lab  # tests/integration's lab helpers (on sys.path through run.py)
from address_lab import rados_call

COUNT = int(os.environ.get("BENCH_ADDRESS_COUNT", "200"))
PROCESSES = int(os.environ.get("BENCH_ADDRESS_PROCESSES", "4"))
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "address_rate.py")


def rate(backend, processes):
    """{seconds, allocations, distinct} of ``processes`` processes allocating COUNT in all."""
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "rados":
            rados_call("remove")
        env = dict(os.environ, PYTHONPATH=os.path.join(lab.REPO, ".build"))
        try:
            out = subprocess.run(["/usr/bin/python3", SCRIPT, backend,
                                  os.path.join(tmp, "addresses.db"), str(COUNT // processes),
                                  str(processes)], env=env, capture_output=True, text=True,
                                 check=True).stdout
        finally:
            if backend == "rados":
                rados_call("remove")
    return json.loads(out)


def address_figures():
    return dict((backend, {"one": rate(backend, 1), "many": rate(backend, PROCESSES)})
                for backend in ("sqlite", "rados"))


def report_addresses(figures):
    rates = figures.get("addresses")
    if not rates:
        return []
    lines = ["", "## Address registry: allocations per second (%d allocations, each one "
             "transaction)" % COUNT, "",
             "| backend | 1 process (/s) | %d processes at once (/s) | distinct IPs |"
             % PROCESSES, "|---|---|---|---|"]
    for backend, pair in sorted(rates.items()):
        lines.append("| %s | %.0f | %.0f | %d of %d |" % (
            backend, pair["one"]["allocations"] / pair["one"]["seconds"],
            pair["many"]["allocations"] / pair["many"]["seconds"], pair["many"]["distinct"],
            pair["many"]["allocations"]))
    return lines
