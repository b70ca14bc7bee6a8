#!/usr/bin/env python3
"""readme_check.py README BUILD_DIR WORKDIR - run the README's examples and
compare their output with what the README shows.

Used by tests/integration/test_readme.sh (which sets up the environment).

What it runs, in README order, in ONE bash session (so `export`s and `$?`
carry over from one example to the next):
  - every ```console block: each `$ command` line, its output being the lines
    after it up to the next `$ ` line;
  - every ```sql block: each statement (up to a line ending in `;`) with
    psql against the ledger, its expected output being the `-- ` comment
    lines right after it (a blank line or SQL ends them; `-- (...)` lines
    that are not a psql row count are commentary).
Hidden steps live in the README as HTML comments right before a block:
  <!-- readme-check: skip (reason) -->   the next block is not run
  <!-- readme-check: reset -->           fresh simulators, ledger and key
  <!-- readme-check: SHELL TEXT -->      run in the session before the block
                                         (its exit status must be 0)
  <!-- readme-check: before "TEXT": SHELL TEXT -->   the same, before the
      block's first command containing TEXT (after the previous such hook's)
In the session `ttsmig` runs the build's binary against the local
simulators and ledger, whatever the README exported (the README's exports
are still made, so they must be valid shell).

Comparison: the expected lines must appear in the actual output (stdout and
stderr, then `(exit N)` when N is not 0) in order, other lines may come in
between. A line that starts with `...` stands for lines left out and is not
compared. Both sides are normalised first: runs of blanks collapse, decimal
numbers (timings, percentiles), timestamps, temporary paths, key ids and
fingerprints become placeholders. Integers (counts) stay exact.
"""
import os
import re
import subprocess
import sys

DIRECTIVE = re.compile(r"<!--\s*readme-check:(.*?)-->", re.S)


class Item:
    def __init__(self, kind, line, text, expected, hidden):
        self.kind = kind  # "sh", "sql"
        self.line = line  # README line number of the command
        self.text = text  # the command / statement
        self.expected = expected  # list of expected lines
        self.hidden = hidden  # list of (line, shell text) to run before it
        self.reset = False


def parse(readme):
    lines = open(readme, encoding="utf-8").read().split("\n")
    items = []
    skipped = []
    pending = []  # directives since the last block: (line, text)
    i = 0
    n = len(lines)
    while i < n:
        ln = lines[i]
        if "<!--" in ln and "readme-check:" in ln:
            start = i
            buf = ln
            while "-->" not in buf and i + 1 < n:
                i += 1
                buf += "\n" + lines[i]
            for m in DIRECTIVE.finditer(buf):
                pending.append((start + 1, m.group(1).strip()))
            i += 1
            continue
        m = re.match(r"^```(\w*)\s*$", ln)
        if not m:
            i += 1
            continue
        lang = m.group(1)
        body_start = i + 1
        j = body_start
        while j < n and not lines[j].startswith("```"):
            j += 1
        body = lines[body_start:j]
        i = j + 1
        if lang not in ("console", "sql"):
            if pending:
                raise SystemExit(f"README line {pending[0][0]}: readme-check before a block "
                                 "that is not ```console or ```sql")
            continue
        skip = [t for _, t in pending if t.startswith("skip")]
        if skip:
            skipped.append((body_start, skip[0]))
            pending = []
            continue
        reset = any(t == "reset" for _, t in pending)
        block = parse_console(body, body_start) if lang == "console" else parse_sql(body, body_start)
        if not block:
            raise SystemExit(f"README line {body_start}: a {lang} block with nothing to run "
                             "(give it <!-- readme-check: skip (reason) -->)")
        block[0].reset = reset
        at = 0
        for l, t in pending:
            if t == "reset":
                continue
            b = re.match(r'^before\s+"([^"]+)"\s*:\s*(.*)$', t, re.S)
            if not b:
                block[0].hidden.append((l, t))
                continue
            while at < len(block) and b.group(1) not in block[at].text:
                at += 1
            if at == len(block):
                raise SystemExit(f"README line {l}: no command of the next block contains "
                                 f"{b.group(1)!r} (after the previous hook's)")
            block[at].hidden.append((l, b.group(2)))
        pending = []
        items.extend(block)
    if pending:
        raise SystemExit(f"README line {pending[0][0]}: readme-check after the last block")
    return items, skipped


def parse_console(body, first):
    out = []
    cur = None
    for k, ln in enumerate(body):
        if ln.startswith("$ "):
            cur = Item("sh", first + k + 1, ln[2:], [], [])
            out.append(cur)
        elif cur is not None:
            cur.expected.append(ln)
        elif ln.strip():
            raise SystemExit(f"README line {first + k + 1}: output before any `$ ` command")
    return out


ROWS = re.compile(r"^\(\d+ rows?\)$")


def parse_sql(body, first):
    out = []
    stmt = []
    stmt_line = 0
    cur = None
    aside = False
    for k, ln in enumerate(body):
        s = ln.strip()
        if cur is not None:
            if s.startswith("--"):
                text = re.sub(r"^-- ?", "", ln.rstrip())
                t = text.strip()
                if aside or (t.startswith("(") and not ROWS.match(t)):
                    aside = not t.endswith(")")
                    continue  # commentary on the result, up to its `)`
                cur.expected.append(text)
                continue
            cur = None
        if not s or (s.startswith("--") and not stmt):
            continue
        if not stmt:
            stmt_line = first + k + 1
        stmt.append(ln)
        if s.endswith(";"):
            cur = Item("sql", stmt_line, "\n".join(stmt), [], [])
            out.append(cur)
            stmt = []
    if stmt:
        raise SystemExit(f"README line {stmt_line}: SQL statement without a final `;`")
    return out


NORMS = [
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:\d\d)?)?"), "<TIME>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(\.\d+)?"), "<TIME>"),
    (re.compile(r"(key id|fingerprint|secret key) [0-9a-f]{8,}"), r"\1 <HEX>"),
    (re.compile(r'database "[^"]*"'), 'database "<DB>"'),
    (re.compile(r"(?<![\w/.])(/root|/home/[^/\s]+|/tmp|/var/tmp)(/[^\s,;:)'\"]*)?"), "<PATH>"),
    # the README shows the real deployments; the session runs local simulators
    (re.compile(r"http://127\.0\.0\.1:\d+|https://(eu1\.cloud\.thethings\.network"
                r"|tenant\.eu1\.cloud\.thethings\.industries)"), "<DEPLOYMENT>"),
    (re.compile(r"\d+\.\d+"), "<NUM>"),
    (re.compile(r"-{2,}"), "--"),
    (re.compile(r"[ \t]+"), " "),
]


def norm(line, sql=False):
    s = line.rstrip()
    if sql and s.endswith("+"):
        s = s[:-1]  # psql's continuation mark of a multi-line value
    for rx, rep in NORMS:
        s = rx.sub(rep, s)
    return s.strip()


def compare(expected, actual, sql):
    """None when every expected line appears in order; else (index, pos)."""
    pos = 0
    acts = [norm(a, sql) for a in actual]
    for idx, e in enumerate(expected):
        ne = norm(e, sql)
        if ne.startswith("...") or ne == "":
            continue
        while pos < len(acts) and acts[pos] != ne:
            pos += 1
        if pos == len(acts):
            return idx
        pos += 1
    return None


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def self_test():
    """The comparison itself: what must differ, what may (no session)."""
    shown = ["Batch wave-1: 246 devices worked on in 1.9 s", "...",
             "  7 steps, 11 HTTP requests (0 retries)",
             "  canary  finished  rejoin  cloud-app  1  1 done  2026-11-24 07:37:21+00"]
    run = ["Batch wave-1: 246 devices worked on in 13.4 s", "extra line",
           "  7 steps,   11 HTTP requests (0 retries)",
           "  canary  finished  rejoin     cloud-app         1  1 done  2026-12-05 16:17:51+00"]
    checks = [
        ("timings, timestamps and alignment may differ", compare(shown, run, False) is None),
        ("a count may not", compare(shown, [r.replace("246", "245") for r in run], False) == 0),
        ("nor a step count", compare(shown, [r.replace("7 steps", "8 steps") for r in run], False) == 2),
        ("lines must come in order", compare(shown, [run[2], run[0], run[3]], False) is not None),
        ("a missing line is found missing", compare(shown, run[:2], False) == 2),
        ("psql continuation marks are ignored", compare(["[", "{"], [" [   +", "   {  +"], True) is None),
        ("deployment URLs are normalised",
         norm("  ok  source reachable  https://eu1.cloud.thethings.network/api/v3 answers")
         == norm("  ok  source reachable  http://127.0.0.1:41234/api/v3 answers")),
        ("key ids and temp paths are normalised",
         norm("file /root/.config/ttsmig/secret.key (key id 65d761f2f3d077c1).")
         == norm("file /tmp/x.Y/config.0/ttsmig/secret.key (key id 75bb83423d42bbe2).")),
    ]
    bad = [name for name, ok in checks if not ok]
    for name in bad:
        print(f"readme-check self-test: FAILED: {name}")
    return 1 if bad else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    readme, build, work = sys.argv[1:4]
    items, skipped = parse(readme)
    script = [
        "set +e",
        f"__work={shq(work)}",
        f"__build={shq(build)}",
        "source tests/readme_session.sh",
    ]
    for k, it in enumerate(items):
        if it.reset:
            script.append(f"__reset {k} || exit 90")
        for l, text in it.hidden:
            p = os.path.join(work, f"hidden.{l}")
            with open(p, "w") as f:
                f.write(text + "\n")
            script.append(f"__hidden {l} || exit 91")
        p = os.path.join(work, f"cmd.{k}")
        with open(p, "w") as f:
            f.write(it.text + "\n")
        script.append(f"__{it.kind} {k}")
    with open(os.path.join(work, "session.sh"), "w") as f:
        f.write("\n".join(script) + "\n")
    rc = subprocess.call(["bash", os.path.join(work, "session.sh")])
    if rc != 0:
        print(f"readme-check: the session stopped (exit {rc}); see above")
        return 1
    slow = []
    with open(os.path.join(work, "times")) as f:
        for ln in f:
            what, t0, t1 = ln.rsplit(" ", 2)
            if what.startswith("example "):
                it = items[int(what.split()[1])]
                what = f"README line {it.line}: {it.text.splitlines()[0][:60]}"
            slow.append((float(t1) - float(t0), what))
    slow.sort(reverse=True)
    print("readme-check: slowest steps: " + "; ".join(f"{w} {t:.1f} s" for t, w in slow[:4]))
    failures = []
    for k, it in enumerate(items):
        with open(os.path.join(work, f"out.{k}"), encoding="utf-8", errors="replace") as f:
            actual = f.read().split("\n")
        if actual and actual[-1] == "":
            actual.pop()
        bad = compare(it.expected, actual, it.kind == "sql")
        if bad is not None:
            failures.append((it, bad, actual))
    for line, reason in skipped:
        print(f"readme-check: README line {line}: block skipped: {reason}")
    print(f"readme-check: {len(items)} examples run, {len(items) - len(failures)} match, "
          f"{len(failures)} do not, {len(skipped)} blocks skipped")
    for n, (it, bad, actual) in enumerate(failures):
        label = "$ " + it.text if it.kind == "sh" else it.text.replace("\n", "\n  ")
        print(f"\nMISMATCH, README line {it.line}: {label}")
        print(f"  expected line {bad + 1} not found (in order): {it.expected[bad]!r}")
        print(f"  normalised: {norm(it.expected[bad], it.kind == 'sql')!r}")
        if n > 0:
            continue  # the full diff of the first one only
        print("  --- README (expected)")
        for idx, e in enumerate(it.expected):
            print(f"  {'>' if idx == bad else ' '} {e}")
        print("  +++ actual output")
        for a in actual:
            print(f"    {a}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
