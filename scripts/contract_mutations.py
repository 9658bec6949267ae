#!/usr/bin/env python3
"""Show that the contract arrangement bites: each mutation of openapi.json (or of a
hand-written wire type) must fail the build or the tests, naming the difference, and a
documentation-only change must flow through with no code change.

Works on a scratch copy of the tracked files (the checkout is never touched) with a target
directory of its own under target/mutants (the first run builds the dependencies once). Prints one line per case and a
closing 'N passed, N failed' line; exits 1 if any case misbehaves.

    python3 scripts/contract_mutations.py            # all cases
    python3 scripts/contract_mutations.py -k enum    # cases whose name contains "enum"
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESEND = "/businesses/me/invitations/{invitationId}/resend"


def load(p):
    return json.loads(p.read_text())


def dump(p, spec):
    p.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n")


def remove_enum_value(spec):
    enum = spec["components"]["schemas"]["BusinessInvitationStatus"]["enum"]
    enum.remove("Expired")


def make_nullable_required(spec):
    s = spec["components"]["schemas"]["BusinessInvitation"]
    del s["properties"]["sentAt"]["nullable"]
    s["required"] = sorted(s["required"] + ["sentAt"])


def change_field_type(spec):
    s = spec["components"]["schemas"]["BusinessInvitation"]["properties"]["businessName"]
    s["type"] = "integer"
    s["format"] = "int64"


def add_operation(spec):
    item = spec["paths"]["/businesses/me/invitations/{invitationId}"]
    get = json.loads(json.dumps(spec["paths"][RESEND]["post"]))
    get["operationId"] = "getBusinessInvitation"
    get["summary"] = "Get a current-business user invitation"
    get["parameters"] = get["parameters"][:1]
    spec["paths"]["/businesses/me/invitations/{invitationId}"] = {"get": get, **item}


def remove_operation(spec):
    del spec["paths"]["/businesses/me/invitations/{invitationId}"]


def unsupported_construct(spec):
    spec["components"]["schemas"]["CreateBusinessInvitationRequest"]["properties"]["email"]["maxLength"] = 320


def remove_declared_status(spec):
    del spec["paths"][RESEND]["post"]["responses"]["429"]


def remove_retry_after(spec):
    del spec["paths"][RESEND]["post"]["responses"]["429"]["headers"]["Retry-After"]


def drop_security(spec):
    spec["paths"][RESEND]["post"]["security"] = []


NEW_SUMMARY = "Resend a current-business user invitation, mutated summary"
NEW_DESCRIPTION_PARAGRAPH = "A paragraph added by the documentation-only mutation."


def change_docs(spec):
    op = spec["paths"][RESEND]["post"]
    op["summary"] = NEW_SUMMARY
    op["description"] = NEW_DESCRIPTION_PARAGRAPH + "\n\n" + op["description"]


def break_wire_pattern(tree):
    p = tree / "src" / "wire.rs"
    text = p.read_text()
    old = 'pub const PATTERN: &\'static str = r"^-?(?:0|[1-9]\\d*)$";'
    assert old in text, "src/wire.rs no longer declares the pattern this case edits"
    p.write_text(text.replace(old, 'pub const PATTERN: &\'static str = r"^-?\\d+$";'))


# name, what it changes, spec mutation, tree mutation, command, expected outcome, what the output must name
CASES = [
    ("enum-value-removed", "an enum value the server produces is removed", remove_enum_value, None,
     "build", "fail", ["Expired"]),
    ("nullable-made-required", "a nullable field the server can leave empty is made required", make_nullable_required, None,
     "build", "fail", ["sent_at"]),
    ("field-type-changed", "a field's type is changed", change_field_type, None,
     "build", "fail", ["business_name"]),
    ("operation-added", "an operation is added without an implementation", add_operation, None,
     "build", "fail", ["get_business_invitation"]),
    ("operation-removed", "an implemented operation is removed", remove_operation, None,
     "build", "fail", ["revoke_business_invitation"]),
    ("status-removed", "a status the handler returns (resend's 429) is removed from the contract", remove_declared_status, None,
     "build", "fail", ["TooManyRequests"]),
    ("retry-after-removed", "the Retry-After header of resend's 429 is removed from the contract", remove_retry_after, None,
     "build", "fail", ["TooManyRequests"]),
    ("security-removed", "resend stops requiring a bearer token", drop_security, None,
     "build", "fail", ["resend_business_invitation"]),
    ("unsupported-construct", "a construct the generator does not support", unsupported_construct, None,
     "build", "fail", ["openapi.json#/components/schemas/CreateBusinessInvitationRequest/properties/email/maxLength", "write instead"]),
    ("wire-type-disagrees", "a hand-written wire type disagrees with the spec (pattern)", None, break_wire_pattern,
     "drift", "fail", ["/licenseQuantity/pattern", "^-?\\\\d+$"]),
    ("docs-only", "a summary and a description change, and nothing else", change_docs, None,
     "docs", "pass", []),
]


def copy_tree(dest):
    """Makes `dest` a copy of the tracked files, writing only files whose content differs.

    A rewritten file gets the current time, so cargo sees a restored openapi.json as changed
    (copying the checkout's older mtime back would leave the mutated build looking fresh), and
    files a case did not touch keep theirs, so cargo does not rebuild every crate for every case.
    """
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    tracked = {f.decode() for f in files if f}
    if dest.exists():
        for p in sorted(dest.rglob("*"), reverse=True):
            rel = p.relative_to(dest).as_posix()
            if p.is_file() and rel not in tracked:
                p.unlink()
    for f in sorted(tracked):
        src = ROOT / f
        target = dest / f
        data = src.read_bytes()
        if target.exists() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        shutil.copymode(src, target)


def run(cmd, tree, env):
    r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def check(tree, env, kind):
    """Runs the case's command; returns (ok, output)."""
    if kind == "build":
        return run(["cargo", "build", "--all-targets", "--quiet"], tree, env)
    if kind == "drift":
        return run(["cargo", "test", "--quiet", "--test", "api", "drift::"], tree, env)
    if kind == "docs":
        code, out = run(["cargo", "test", "--quiet", "--test", "api", "drift::"], tree, env)
        if code != 0:
            return code, out
        code, printed = run(["cargo", "run", "--quiet", "--", "openapi"], tree, env)
        if code != 0:
            return code, printed
        op = json.loads(printed)["paths"][RESEND]["post"]
        problems = []
        if op["summary"] != NEW_SUMMARY:
            problems.append(f"`openapi` prints summary {op['summary']!r}")
        if not op["description"].startswith(NEW_DESCRIPTION_PARAGRAPH):
            problems.append("`openapi` does not print the new description")
        generated = list(Path(env["CARGO_TARGET_DIR"]).glob("debug/build/leadping-invitations-*/out/api.rs"))
        if not any(NEW_SUMMARY in g.read_text() and NEW_DESCRIPTION_PARAGRAPH in g.read_text() for g in generated):
            problems.append("the generated trait's doc comments do not carry the new text")
        return (1 if problems else 0), "\n".join(problems) or out
    raise ValueError(kind)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", default="", help="run only cases whose name contains this")
    args = ap.parse_args()

    work = ROOT / ".ci-work" / "mutant"
    env = dict(os.environ)
    # A target directory of its own: cargo names a package's artifacts without its path, so a
    # mutant sharing the checkout's target directory would leave its artifacts to the checkout.
    env["CARGO_TARGET_DIR"] = str(ROOT / "target" / "mutants")
    env["CARGO_TERM_COLOR"] = "never"
    passed = failed = 0

    copy_tree(work)
    code, out = check(work, env, "drift")
    if code != 0:
        print(out)
        print("contract mutations: the unmutated copy is not green; fix that first")
        print("0 passed, 1 failed")
        return 1

    for name, what, spec_mutation, tree_mutation, kind, expect, must_name in CASES:
        if args.k not in name:
            continue
        copy_tree(work)
        if spec_mutation:
            spec = load(work / "openapi.json")
            spec_mutation(spec)
            dump(work / "openapi.json", spec)
        if tree_mutation:
            tree_mutation(work)
        started = time.monotonic()
        code, out = check(work, env, kind)
        took = time.monotonic() - started
        outcome = "pass" if code == 0 else "fail"
        missing = [m for m in must_name if m not in out]
        if outcome == expect and not missing:
            passed += 1
            print(f"ok    {name}: {what} -> {'builds and flows through' if expect == 'pass' else 'refused, naming ' + ', '.join(must_name)} ({took:.0f} s)")
        else:
            failed += 1
            print(f"FAIL  {name}: {what}: expected {expect}, got {outcome}" + (f"; output does not name {missing}" if missing else ""))
            print("      " + "\n      ".join(out.strip().splitlines()[-40:]))

    # Reverting restores a green build: the pristine copy builds and passes the drift check.
    copy_tree(work)
    code, out = check(work, env, "drift")
    if code == 0:
        passed += 1
        print("ok    reverted: the unmutated contract builds and passes the drift check again")
    else:
        failed += 1
        print("FAIL  reverted: the unmutated copy no longer passes\n" + out)
    shutil.rmtree(work, ignore_errors=True)
    print(f"mutations: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
