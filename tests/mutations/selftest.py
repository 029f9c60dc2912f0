#!/usr/bin/env python3
# Tests of scripts/mutations' own logic, without building or running
# anything: the .mut format is parsed as documented, an anchor that is
# missing or not unique fails loudly, and every catalogue entry applies to
# the current tree (so a change to the product code that moves an anchor
# fails here, not an hour into a mutation run).
import importlib.machinery
import importlib.util
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
loader = importlib.machinery.SourceFileLoader(
    "mutations", os.path.join(ROOT, "scripts", "mutations"))
spec = importlib.util.spec_from_loader("mutations", loader)
mu = importlib.util.module_from_spec(spec)
loader.exec_module(mu)

failures = 0


def expect(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"FAIL {what}")
    else:
        print(f"ok {what}")


def parse_text(text):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "99-test.mut")
        open(p, "w").write(text)
        return mu.parse(p)


def raises(fn, needle):
    try:
        fn()
    except mu.MutError as e:
        return needle in str(e)
    return False


HEAD = ("desc: d\nrule: 1\nfile: f.c\nschedule: --mode 2pc\n"
        "expect: bank\n")
good = parse_text(HEAD + "# comment\n--- anchor\n\tint a;\n\tint b;\n"
                  "--- replace\n\tint c;\n--- anchor\nx\n--- replace\n"
                  "y\n--- end\n")
expect(good["name"] == "99-test" and good["rule"] == "1", "header fields")
expect(good["edits"] == [("\tint a;\n\tint b;", "\tint c;"), ("x", "y")],
       "two verbatim anchor/replace pairs, tabs kept")
expect(mu.mutate(good, "x\n\tint a;\n\tint b;\n") == "y\n\tint c;\n",
       "both edits applied")
expect(raises(lambda: mu.mutate(good, "\tint a;\n\tint b;\n"),
              "anchor not found"), "a missing anchor fails loudly")
expect(raises(lambda: mu.mutate(good, "x\nx\n\tint a;\n\tint b;\n"),
              "anchor found 2 times"), "a repeated anchor fails loudly")
expect(raises(lambda: parse_text(HEAD + "--- anchor\na\n--- end\n"),
              "anchor without replace") or
       raises(lambda: parse_text(HEAD + "--- anchor\na\n--- end\n"),
              "missing"), "an anchor without replacement is refused")
expect(raises(lambda: parse_text("desc: d\n--- anchor\na\n--- replace\n"
                                 "b\n--- end\n"), "missing header"),
       "missing headers are refused")
expect(raises(lambda: parse_text(HEAD + "bogus: 1\n"), "unknown header"),
       "unknown headers are refused")
PAIR = "--- anchor\na\n--- replace\nb\n--- end\n"
expect(good["env_vars"] == {}, "no env header: no settings")
expect(parse_text(HEAD + "env: DTX_CHECKPOINT_MS=100 DTX_A_B=x\n" + PAIR)
       ["env_vars"] == {"DTX_CHECKPOINT_MS": "100", "DTX_A_B": "x"},
       "env settings parsed")
expect(raises(lambda: parse_text(HEAD + "env: PATH=/x\n" + PAIR),
              "not DTX_NAME=VALUE"), "env outside DTX_ is refused")
expect(raises(lambda: parse_text(HEAD + "env: DTX_X\n" + PAIR),
              "not DTX_NAME=VALUE"), "env without a value is refused")
expect(raises(lambda: parse_text(HEAD + "--- anchor\na\n--- replace\nb\n"),
              "missing '--- end'"), "a file without '--- end' is refused")
res = {"name": "n", "caught": True, "seconds": 41, "checker": "atomicity",
       "seed": 2}
expect(mu.line(res) == "caught n after 41s by atomicity (seed 2)",
       "the caught line")
res = {"name": "n", "caught": False, "seconds": 90, "seed": 3,
       "note": "exit 0"}
expect(mu.line(res) == "missed n after 90s (seed 3): exit 0",
       "the missed line")
expect(mu.caught_by({"checkers": {"bank": {"valid": True},
                                  "replay": {"valid": False},
                                  "logs": {"valid": "unknown"}}})
       == ["replay"], "only checkers that said invalid catch")

# Every catalogue entry applies to the tree as it is.
files = mu.select([])
expect(len(files) >= 12, f"at least 12 mutants ({len(files)})")
for f in files:
    m = mu.parse(os.path.join(mu.CATALOGUE, f))
    text = open(os.path.join(ROOT, m["file"]), encoding="utf-8").read()
    try:
        ok = mu.mutate(m, text) != text
        expect(ok, f"{m['name']} applies to {m['file']}")
    except mu.MutError as e:
        expect(False, str(e))

print(f"{failures} failures")
sys.exit(1 if failures else 0)
