#!/usr/bin/env python3
"""Counts what a test stage ran from its JUnit-style XML reports.

  test_summary.py STAGE REPORT.xml...   prints a line per stage, and one per
                                        skipped test with its reason, and
                                        appends the counts to $LUMEN_SUMMARY
  test_summary.py --total               the totals over every stage so far,
                                        as the closing line of the run

Reads ctest's --output-junit and GoogleTest's --gtest_output=xml alike.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

SUMMARY = os.environ.get("LUMEN_SUMMARY", "build/test-summary.tsv")


def skip_reason(case):
    node = case.find("skipped")
    text = (node.get("message") or "") if node is not None else ""
    if node is not None and node.text:
        text = node.text
    out = case.findtext("system-out") or ""
    # GoogleTest prints "file:line: Skipped" and then the reason.
    m = re.search(r": Skipped\n(.+)", out) or re.search(r"Skipped\s*(.+)", text)
    return (m.group(1) if m else text or "no reason given").strip().splitlines()[0]


def stage(name, reports):
    passed = failed = 0
    skipped = []
    for path in reports:
        for case in ET.parse(path).getroot().iter("testcase"):
            status = case.get("status", "run")
            test, suite = case.get("name", "?"), case.get("classname")
            full = test if suite in (None, "", test) else f"{suite}.{test}"  # ctest repeats the name
            if case.find("failure") is not None or case.find("error") is not None or status == "fail":
                failed += 1
            elif (case.find("skipped") is not None or status in ("notrun", "disabled")
                  or case.get("result") == "skipped"):
                skipped.append((full, skip_reason(case)))
            else:
                passed += 1
    print(f"{name}: {passed + failed} ran ({passed} passed, {failed} failed), {len(skipped)} skipped")
    for full, why in skipped:
        print(f"  skipped {full}: {why}")
    with open(SUMMARY, "a") as f:
        f.write(f"{name}\t{passed}\t{failed}\t{len(skipped)}\n")


def total():
    passed = failed = skipped = 0
    with open(SUMMARY) as f:
        for line in f:
            _, p, fl, s = line.rstrip("\n").split("\t")
            passed, failed, skipped = passed + int(p), failed + int(fl), skipped + int(s)
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")


if __name__ == "__main__":
    if sys.argv[1:] == ["--total"]:
        total()
    else:
        stage(sys.argv[1], sys.argv[2:])
