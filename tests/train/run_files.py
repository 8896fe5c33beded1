"""What the command-line fault tests read from a run's output folder."""
import collections
import json
import os

# Wall-clock fields of a metrics.jsonl record: they measure time, not training,
# and differ between any two runs.
TIMING_FIELDS = ("tokens_per_second",)  # and every key starting with "seconds/"


def leftovers(out):
    """Temporary files and folders anywhere under `out`: what a write, a
    replacement or a prune cut short leaves."""
    found = []
    for root, dirs, files in os.walk(out):
        for name in dirs + files:
            if any(mark in name for mark in (".tmp-", ".old-", ".pruned-", ".tmp.")):
                found.append(os.path.relpath(os.path.join(root, name), out))
    return sorted(found)


def metrics_records(path):
    """metrics.jsonl's records, each as its (key, value) pairs in order, less
    the wall-clock fields."""
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line, object_pairs_hook=collections.OrderedDict)
            out.append([(k, v) for k, v in r.items() if not k.startswith("seconds/") and k not in TIMING_FIELDS])
    return out
