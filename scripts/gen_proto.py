"""Regenerate the Python code of `proto/pinsched/v1` into `pinsched/v1/` (never edit it by hand).

Run `python scripts/gen_proto.py`; `--check` regenerates into a temporary folder and fails when the
committed code differs (CI runs it). `google/type/*.proto` (datetime, dayofweek, timeofday) are
compiled against but not generated: their Python modules come from `googleapis-common-protos`.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
OUT = ROOT / "pinsched" / "v1"


def generate(dest_root: Path) -> Path:
    """Generate into *dest_root*/pinsched/v1 and return that folder."""
    sources = sorted(str(p.relative_to(PROTO)) for p in (PROTO / "pinsched" / "v1").glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{include}",
        f"--python_out={dest_root}",
        f"--grpc_python_out={dest_root}",
        f"--mypy_out={dest_root}",
        f"--mypy_grpc_out={dest_root}",
        *sources,
    ]
    # protoc finds the mypy-protobuf plugins on PATH: make the running venv's bin/ visible.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out = dest_root / "pinsched" / "v1"
    header = '"""GENERATED from proto/pinsched/v1: never edit by hand."""\n'
    (out / "__init__.py").write_text(header)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if pinsched/v1 is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        if args.check:
            names = sorted(p.name for p in fresh.iterdir() if p.is_file())
            current = sorted(p.name for p in OUT.iterdir() if p.is_file()) if OUT.exists() else []
            _, mismatch, errors = filecmp.cmpfiles(fresh, OUT, names, shallow=False)
            if names != current or mismatch or errors:
                print(f"pinsched/v1 is stale: {mismatch + errors or 'file list differs'}; "
                      "run `python scripts/gen_proto.py`", file=sys.stderr)
                return 1
            print("pinsched/v1 is up to date")
            return 0
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(fresh, OUT)
    print(f"generated {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
