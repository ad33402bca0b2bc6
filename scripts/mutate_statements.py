#!/usr/bin/env python3
"""Mutation testing for the statements cargo-mutants cannot see: the Redis
Lua scripts and the PostgreSQL queries, which the backends embed at compile
time. One mutant at a time: change one token in one file, run the kit's
test target for that backend, restore the file.

Mutations (each one place at a time), chosen to mirror the defects real
stores have:
  - a comparison flipped at its boundary or negated (`<` -> `<=`, `>` -> `>=`,
    `==` -> `~=`, `=` -> `<>` inside WHERE-like clauses, ...);
  - a condition clause dropped or weakened (`and`/`AND` -> `or`/`OR`);
  - a branch's result swapped (`return 1` <-> `return 0`, `true` <-> `false`);
  - an expiry check removed (the server clock replaced by a far past, so
    nothing looks expired: `now()` or `clock_timestamp()` -> `'-infinity'`);
  - an increment's step changed (`+ 1` -> `+ 0`).

A mutant is "caught" when the test command fails, "missed" when it passes,
"timeout" past the limit. Comment lines are never mutated. Outcomes are
written to OUT/outcomes.txt, one line per mutant, and each mutant's test
output to OUT/logs/<number>.log.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import time

LUA_RULES = [
    (r"<=", "<"), (r">=", ">"), (r"(?<![<>=~])<(?![=<])", "<="), (r"(?<![<>=~-])>(?![=>])", ">="),
    (r"==", "~="), (r"~=", "=="),
    (r"\band\b", "or"), (r"\bnot\b ", ""),
    (r"\breturn 1\b", "return 0"), (r"\breturn 0\b", "return 1"),
    (r"\btrue\b", "false"), (r"\bfalse\b", "true"),
    (r"\+ 1\b", "+ 0"),
]

SQL_RULES = [
    (r"<=", "<"), (r">=", ">"), (r"(?<![<>=!])<(?![=>])", "<="), (r"(?<![<>=!-])>(?![=])", ">="),
    (r"\bAND\b", "OR"), (r"\bNOT\b ", ""),
    (r"\bnow\(\)", "'-infinity'::timestamptz"),
    (r"\bclock_timestamp\(\)", "'-infinity'::timestamptz"),
    (r"\btrue\b", "false"), (r"\bfalse\b", "true"),
    (r"\+ 1\b", "+ 0"),
    (r"\bIS NULL\b", "IS NOT NULL"), (r"\bIS NOT NULL\b", "IS NULL"),
]


def is_comment(line, lua):
    stripped = line.strip()
    return stripped.startswith("--") or not stripped


def mutants(path, rules, lua):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for number, line in enumerate(lines):
        if is_comment(line, lua):
            continue
        code = line.split("--", 1)[0]
        for pattern, replacement in rules:
            for match in re.finditer(pattern, code):
                mutated = line[: match.start()] + replacement + line[match.end():]
                if mutated != line:
                    yield number, line, mutated


def run(test, timeout, log_path=None):
    """Runs the test command; its output goes to `log_path` (kept, so that
    a "caught" can be told apart from a test that failed for another
    reason)."""
    started = time.time()
    log = open(log_path, "w", encoding="utf-8") if log_path else subprocess.DEVNULL
    try:
        done = subprocess.run(test, shell=True, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.time() - started
    finally:
        if log_path:
            log.close()
    return ("missed" if done.returncode == 0 else "caught"), time.time() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("--files", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--rerun", help="an earlier outcomes.txt: run only the mutants it lists as missed")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    files = sorted(glob.glob(args.files))
    lua = args.label == "lua"
    rules = LUA_RULES if lua else SQL_RULES
    plan = [(path, n, old, new) for path in files for (n, old, new) in mutants(path, rules, lua)]
    if args.rerun:
        # A mutant is named by its place and its mutated line, as in the log.
        with open(args.rerun, encoding="utf-8") as f:
            missed = {tuple(line.rstrip("\n").split("\t")[1:3]) for line in f if line.startswith("missed\t")}
        plan = [m for m in plan if (f"{m[0]}:{m[1] + 1}", f"{m[2].strip()}  =>  {m[3].strip()}") in missed]
    if args.list:
        for path, n, old, new in plan:
            print(f"{path}:{n + 1}: {old.strip()}  =>  {new.strip()}")
        print(f"{len(plan)} mutants")
        return 0
    # The unmutated tree must pass, or every mutant would look caught.
    baseline, seconds = run(args.test, args.timeout)
    if baseline != "missed":
        print(f"baseline failed ({baseline}): fix the tests first", file=sys.stderr)
        return 1
    counts = {"caught": 0, "missed": 0, "timeout": 0}
    survivors = []
    with open(os.path.join(args.out, "outcomes.txt"), "w", encoding="utf-8") as log:
        for index, (path, n, old, new) in enumerate(plan, 1):
            with open(path, encoding="utf-8") as f:
                original = f.read()
            lines = original.split("\n")
            lines[n] = new
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write("\n".join(lines))
                logs = os.path.join(args.out, "logs")
                os.makedirs(logs, exist_ok=True)
                outcome, took = run(args.test, args.timeout, os.path.join(logs, f"{index}.log"))
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(original)
            counts[outcome] += 1
            line = f"{outcome}\t{path}:{n + 1}\t{old.strip()}  =>  {new.strip()}"
            log.write(line + "\n")
            log.flush()
            print(f"[{index}/{len(plan)}] {outcome} in {took:.0f}s: {path}:{n + 1}: {new.strip()}", flush=True)
            if outcome == "missed":
                survivors.append(line)
    viable = sum(counts.values())
    rate = f"{round(100 * (counts['caught'] + counts['timeout']) / viable)}%" if viable else "n/a"
    print(f"| {args.label} (kit alone) | {viable} | 0 | {counts['caught']} | {counts['timeout']} | {counts['missed']} | {rate} |")
    if survivors:
        print(f"survivors ({args.label}):")
        for line in survivors:
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
