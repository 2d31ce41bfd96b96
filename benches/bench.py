#!/usr/bin/env python3
"""Helpers for scripts/bench: the measurements fio does not do, and the summary.

Subcommands (all print tab-separated "name<TAB>value" lines on stdout):

  fio JSON RW FIELD        one number from fio --output-format=json: RW is read|write,
                           FIELD is bw (printed as MB/s, 10^6 bytes) or iops
  meta DIR N               create (O_CREAT|O_EXCL, close), then stat, then unlink N empty
                           files in the fresh directory DIR; prints the ops/s of each phase
                           and "total" = N / (sum of the three phase times)
  copy SRC DST             copy_file_range(2) of the whole of SRC into a new DST, looping
                           over short copies, then fsync(DST); prints MB/s and the method
                           check (bytes copied)
  time CMD...              wall time of CMD (stdout to /dev/null), in ms
  summarize TSV OUTDIR     the tables (markdown) from the results file scripts/bench writes

Not a cargo bench: cargo only looks at benches/*.rs.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

MB = 1_000_000


def fio_value(path, rw, field):
    with open(path) as f:
        text = f.read()
    # fio may print warnings before the JSON object when --output is not used.
    data = json.loads(text[text.index("{"):])
    job = data["jobs"][0]
    if job.get("error"):
        raise SystemExit(f"fio job error {job['error']}")
    side = job[rw]
    if field == "bw":
        print(f"bw\t{side['bw_bytes'] / MB:.1f}")
    else:
        print(f"iops\t{side['iops']:.0f}")


def meta(d, n):
    os.makedirs(d)
    names = [os.path.join(d, f"f{i:05d}") for i in range(n)]
    t0 = time.perf_counter()
    for p in names:
        os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    t1 = time.perf_counter()
    for p in names:
        os.stat(p)
    t2 = time.perf_counter()
    for p in names:
        os.unlink(p)
    t3 = time.perf_counter()
    os.rmdir(d)
    print(f"create\t{n / (t1 - t0):.0f}")
    print(f"stat\t{n / (t2 - t1):.0f}")
    print(f"unlink\t{n / (t3 - t2):.0f}")
    print(f"total\t{n / (t3 - t0):.0f}")


def copy(src, dst):
    size = os.stat(src).st_size
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    t0 = time.perf_counter()
    done = 0
    while done < size:
        n = os.copy_file_range(fi, fo, size - done, done, done)
        if n == 0:
            break
        done += n
    os.fsync(fo)
    t1 = time.perf_counter()
    os.close(fi)
    os.close(fo)
    if done != size:
        raise SystemExit(f"copy_file_range copied {done} of {size} bytes")
    print(f"bw\t{size / MB / (t1 - t0):.1f}")


def time_cmd(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    t1 = time.perf_counter()
    print(f"ms\t{(t1 - t0) * 1000:.1f}")


# ------------------------------------------------------------------ summary

RING_RE = re.compile(r"sqes=(\d+) enters=(\d+)")
OP_RE = re.compile(r" (\w+)=(\d+)/(\d+)/(\d+)us")
LOWER_IS_BETTER = {"ms"}


def parse_stats(line):
    """(sqes, enters, {op: (requests, errors)}) of one 'stats:' line, or None."""
    if not line:
        return None
    m = RING_RE.search(line)
    sqes, enters = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    ops_part = line.split(" ops:", 1)[1] if " ops:" in line else ""
    ops = {o: (int(r), int(e)) for o, r, e, _ in OP_RE.findall(ops_part)}
    return sqes, enters, ops


def read_line(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def delta(prefix):
    """Ring SQEs, enters, FUSE requests and errors per op between the .before and .after
    snapshots of one measurement; None for native (no snapshots)."""
    b = parse_stats(read_line(prefix + ".before"))
    a = parse_stats(read_line(prefix + ".after"))
    if a is None or b is None:
        return None
    ops = {}
    for op, (r, e) in a[2].items():
        r0, e0 = b[2].get(op, (0, 0))
        if r - r0 or e - e0:
            ops[op] = (r - r0, e - e0)
    return a[0] - b[0], a[1] - b[1], ops


def fmt(v):
    if v is None:
        return "FAIL"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summarize(tsv, outdir):
    rows = []  # (repeat, target, test, unit, value or None, prefix)
    with open(tsv) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            rep, target, test, unit, value, prefix = line.rstrip("\n").split("\t")
            rows.append((int(rep), target, test, unit, None if value == "FAIL" else float(value), prefix))
    tests, targets = [], []
    for r in rows:
        if r[2] not in tests:
            tests.append(r[2])
        if r[1] not in targets:
            targets.append(r[1])
    cell = {}
    for r in rows:
        cell.setdefault((r[2], r[1]), []).append(r)

    def med(test, target):
        vals = [r[4] for r in cell.get((test, target), []) if r[4] is not None]
        return statistics.median(vals) if vals else None

    out = []
    out.append("Long table: median of the repeats; range = min..max; spread = (max-min)/median;")
    out.append("x native = fraction of native speed (for ms rows: native time / this time), so")
    out.append("1.00 = as fast as native and higher is better in every row; ops/enter = ring SQEs")
    out.append("per io_uring_enter during that measurement (summed over repeats; mean SQEs per")
    out.append("measurement in parentheses, '-' = no io_uring_enter at all); FUSE reqs =")
    out.append("requests the daemon served during one measurement (median), main ops listed.")
    out.append("")
    out.append("| test | target | median | unit | range | spread | x native | ops/enter | FUSE reqs (median) |")
    out.append("|---|---|---:|---|---|---:|---:|---:|---|")
    ratios = {}
    for test in tests:
        native = med(test, "native")
        for target in targets:
            rs = cell.get((test, target))
            if not rs:
                continue
            unit = rs[0][3]
            vals = [r[4] for r in rs if r[4] is not None]
            m = med(test, target)
            fails = len(rs) - len(vals)
            rng = f"{fmt(min(vals))}..{fmt(max(vals))}" if vals else "-"
            spread = f"{(max(vals) - min(vals)) / m * 100:.0f}%" if vals and m else "-"
            if fails:
                rng += f" ({fails} FAIL)"
            ratio = None
            if m is not None and native:
                ratio = native / m if unit in LOWER_IS_BETTER else m / native
            ratios[(test, target)] = ratio
            sq = en = 0
            reqs = []
            opsum = {}
            have = False
            for r in rs:
                d = delta(r[5])
                if d is None:
                    continue
                have = True
                sq += d[0]
                en += d[1]
                reqs.append(sum(v[0] for v in d[2].values()))
                for op, (n, e) in d[2].items():
                    t = opsum.setdefault(op, [0, 0])
                    t[0] += n
                    t[1] += e
            ope = ((f"{sq / en:.2f}" if en else "-") + f" ({round(sq / max(len(rs), 1))} SQEs)") if have else ""
            if have:
                k = len(reqs)
                ranked = sorted(opsum.items(), key=lambda kv: -kv[1][0])
                # The three busiest ops, and every op that returned errors.
                shown = [kv for i, kv in enumerate(ranked) if i < 3 or kv[1][1]]
                desc = ", ".join(
                    f"{op} {round(n / k)}" + (f" ({round(e / k)} err)" if e else "")
                    for op, (n, e) in shown
                )
                reqtxt = f"{round(statistics.median(reqs))}" + (f": {desc}" if desc else "")
                if "-" in test and test.split("-")[0] == "meta" and test != "meta-total":
                    reqtxt = "(see meta-total)"
            else:
                reqtxt = ""
            out.append(
                f"| {test} | {target} | {fmt(m)} | {unit} | {rng} | {spread} | "
                f"{'' if ratio is None else f'{ratio:.2f}x'} | {ope} | {reqtxt} |"
            )
    # Compact ratio table.
    others = [t for t in targets if t != "native"]
    out.append("")
    out.append("Ratio to native (median / native median; higher is better, 1.00 = native):")
    out.append("")
    out.append("| test | native | " + " | ".join(others) + " |")
    out.append("|---|---:|" + "---:|" * len(others))
    for test in tests:
        nat = med(test, "native")
        unit = next(r[3] for r in rows if r[2] == test)
        cells = []
        for t in others:
            r = ratios.get((test, t))
            cells.append("" if (test, t) not in cell else ("FAIL" if r is None else f"{r:.2f}x"))
        out.append(f"| {test} | {fmt(nat)} {unit} | " + " | ".join(cells) + " |")
    text = "\n".join(out) + "\n"
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


def main(argv):
    cmd = argv[1]
    if cmd == "fio":
        fio_value(argv[2], argv[3], argv[4])
    elif cmd == "meta":
        meta(argv[2], int(argv[3]))
    elif cmd == "copy":
        copy(argv[2], argv[3])
    elif cmd == "time":
        time_cmd(argv[2:])
    elif cmd == "summarize":
        summarize(argv[2], argv[3])
    else:
        raise SystemExit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main(sys.argv)
