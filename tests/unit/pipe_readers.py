#!/usr/bin/env python3
"""No shell script of ours reads only part of a pipe where pipefail is on.

`writer | head -n 1` or `writer | grep -q X` stop reading early; a writer
that writes again then dies of SIGPIPE, and under `set -o pipefail` the
pipeline fails although its answer was right (tests/faults/redis_outage.sh
stopped silently in about 9 % of runs that way). Read the whole input
instead: `sed -n 1p`, `grep X >/dev/null`, awk. Strings run by `bash -c`
are left alone: a new bash has no pipefail.

usage: pipe_readers.py DIR...   (prints "N passed, N failed")
"""
import pathlib
import re
import sys

EARLY_READER = re.compile(r"(?<!\|)\|(?!\|)\s*(head\b|grep\s+-[A-Za-z]*[qm])")
BASH_C = re.compile(r"bash -c\s*(?:\\\n\s*)?(['\"])")


def outside_bash_c(text):
    """The text with every quoted string that follows `bash -c` blanked."""
    out = list(text)
    i = 0
    while i < len(text):
        m = BASH_C.search(text, i)
        if not m:
            break
        quote, j, depth = m.group(1), m.end(), 0
        # in "...", a $( ... ) may hold quotes of its own
        while j < len(text) and (text[j] != quote or depth > 0):
            if quote == '"' and text.startswith("$(", j):
                depth += 1
            elif quote == '"' and text[j] == ")" and depth > 0:
                depth -= 1
            j += 2 if quote == '"' and text[j] == "\\" else 1
        for k in range(m.end(), min(j, len(text))):
            if out[k] != "\n":
                out[k] = " "
        i = j + 1
    return "".join(out)


def main(dirs):
    bad = 0
    files = sorted(p for d in dirs for p in pathlib.Path(d).rglob("*.sh"))
    for path in files:
        text = outside_bash_c(path.read_text())
        for n, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            if EARLY_READER.search(line):
                print(f"not ok - {path}:{n}: a reader that stops early: {line.strip()}")
                bad += 1
    print(f"{len(files)} scripts read")
    print(f"{0 if bad else 1} passed, {1 if bad else 0} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["."]))
