"""Regenerate the Python code of `proto/pinsched/v1` into `pinsched/v1/` (never edit it by hand).

Run `python scripts/gen_proto.py`; `--check` regenerates into a temporary folder and fails when the
committed code differs (CI runs it). It also writes the HTTP door's OpenAPI document
(`pinsched.http.openapi`, from the `google.api.http` annotations and the proto comments) to
`docs/openapi.json` and `pinsched/http/openapi.json`, checked the same way.
`google/type/*.proto` (datetime, dayofweek, timeofday) are compiled against but not generated:
their Python modules come from `googleapis-common-protos`; so do those of the vendored
`google/api/annotations.proto` and `google/api/http.proto` (the HTTP routes, `google.api.http`).

Besides the code, `pinsched/v1/descriptor_set.binpb` is a `FileDescriptorSet` of the same files
(with their imports) that keeps the source info: the proto comments, which the generated Python
code drops. The MCP server reads its tool descriptions and schema descriptions from it.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
OUT = ROOT / "pinsched" / "v1"
OPENAPI = (ROOT / "docs" / "openapi.json", ROOT / "pinsched" / "http" / "openapi.json")
DESCRIPTOR_SET = "descriptor_set.binpb"


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
        f"--descriptor_set_out={dest_root / 'pinsched' / 'v1' / DESCRIPTOR_SET}",
        "--include_source_info",
        "--include_imports",
        *sources,
    ]
    # protoc finds the mypy-protobuf plugins on PATH: make the running venv's bin/ visible.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    (dest_root / "pinsched" / "v1").mkdir(parents=True, exist_ok=True)
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out = dest_root / "pinsched" / "v1"
    header = '"""GENERATED from proto/pinsched/v1: never edit by hand."""\n'
    (out / "__init__.py").write_text(header)
    return out


def openapi_text(generated: Path) -> str:
    """The OpenAPI document, built from the generated descriptor set (it keeps the comments)."""
    sys.path.insert(0, str(ROOT))
    from pinsched.http import openapi

    fds = descriptor_pb2.FileDescriptorSet.FromString((generated / DESCRIPTOR_SET).read_bytes())
    return openapi.render(openapi.build(fds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if pinsched/v1 is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        spec = openapi_text(fresh)
        if args.check:
            stale = [
                str(p.relative_to(ROOT)) for p in OPENAPI if not p.exists() or p.read_text() != spec
            ]
            if stale:
                print(
                    f"{', '.join(stale)} stale; run `python scripts/gen_proto.py`", file=sys.stderr
                )
                return 1
            names = sorted(p.name for p in fresh.iterdir() if p.is_file())
            current = sorted(p.name for p in OUT.iterdir() if p.is_file()) if OUT.exists() else []
            _, mismatch, errors = filecmp.cmpfiles(fresh, OUT, names, shallow=False)
            if names != current or mismatch or errors:
                print(
                    f"pinsched/v1 is stale: {mismatch + errors or 'file list differs'}; "
                    "run `python scripts/gen_proto.py`",
                    file=sys.stderr,
                )
                return 1
            print("pinsched/v1 is up to date")
            return 0
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(fresh, OUT)
        for path in OPENAPI:
            path.write_text(spec)
    print(f"generated {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
