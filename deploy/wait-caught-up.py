#!/usr/bin/env python3
"""wait-caught-up.py SECONDS [--members N | --listed N] -- COMMAND...

Waits until the cluster is whole again, as `canon cluster status --json`
reports it: every member reachable, every group led, and every follower of
every group caught up (lag 0). Exits 1 with what is still wrong if that does
not happen within SECONDS. With --members N, also waits for exactly N
members. With --listed N, waits only until N members are listed (a new
member's join has committed), whatever else is wrong: before removing a dead
member, say, whose absence keeps the cluster from being whole. The runbooks (deploy/README.md) run it between steps:

    deploy/wait-caught-up.py 120 -- canon               # CANON_CONFIG set
    deploy/wait-caught-up.py 60 -- deploy/netns/canon.sh DIR
"""

import argparse
import functools
import json
import subprocess
import sys
import time


def not_listed(view, listed_wanted):
    """Why `view` does not list `listed_wanted` members; empty if it does."""
    listed = len(view.get("members", []))
    return [] if listed == listed_wanted else [f"{listed} members listed, want {listed_wanted}"]


def problems(view, members_wanted):
    """What keeps the cluster in `view` from being whole; empty if nothing."""
    found = []
    members = view.get("members", [])
    if members_wanted and len(members) != members_wanted:
        found.append(f"{len(members)} members, want {members_wanted}")
    for m in members:
        if not m.get("reachable"):
            found.append(f"node {m['node']} unreachable: {m.get('error', '')}")
    for g in view.get("groups", []):
        name = f"group {g['group']}"
        if not g.get("leader"):
            found.append(f"{name} has no leader")
            continue
        replicas = len(g.get("voters", [])) + len(g.get("learners", []))
        followers = g.get("followers", [])
        if len(followers) != replicas - 1:
            found.append(f"{name}: its leader reports {len(followers)} of {replicas - 1} followers")
        for f in followers:
            if f.get("lag") or not f.get("matched_known"):
                found.append(f"{name}: node {f['node']} lags {f.get('lag')}")
    return found


def main():
    parser = argparse.ArgumentParser(usage=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float)
    wanted = parser.add_mutually_exclusive_group()
    wanted.add_argument("--members", type=int, default=0)
    wanted.add_argument("--listed", type=int, default=0)
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the canon command after --")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    deadline = time.monotonic() + args.seconds
    if args.listed:
        check = functools.partial(not_listed, listed_wanted=args.listed)
    else:
        check = functools.partial(problems, members_wanted=args.members)
    last = ["never asked"]
    while True:
        run = subprocess.run(command + ["cluster", "status", "--json"],
                             capture_output=True, text=True, check=False)
        if run.returncode == 0:
            last = check(json.loads(run.stdout))
            if not last:
                return 0
        else:
            last = [f"canon exited {run.returncode}: {run.stderr.strip()}"]
        if time.monotonic() >= deadline:
            print(f"wait-caught-up: not caught up within {args.seconds:g}s:", file=sys.stderr)
            for p in last[:20]:
                print(f"  {p}", file=sys.stderr)
            return 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
