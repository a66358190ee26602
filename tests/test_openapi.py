"""The committed contract: openapi.json is what the app serves, and nas_client/ is what the generator makes of it."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.openapi import ROOT, SPEC_PATH, render_spec

GENERATOR = Path(sys.executable).parent / "openapi-python-client"


def test_committed_spec_matches_the_app():
    assert SPEC_PATH.read_text() == render_spec(), "openapi.json is out of date: run `make openapi`"


def test_every_operation_is_summarized_and_documents_problem_errors():
    spec = json.loads(SPEC_PATH.read_text())
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "detail"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary") and operation.get("operationId"), where
            errors = {code: response for code, response in operation["responses"].items() if code >= "400"}
            if path.startswith("/v1/"):
                assert "401" in errors, where
            for code, response in errors.items():
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (where, code)
    upload = spec["paths"]["/v1/datasets"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["required"] == ["file"] and set(upload["properties"]) == {"file", "name"}


@pytest.mark.skipif(shutil.which("ruff", path=str(GENERATOR.parent)) is None, reason="ruff not installed")
def test_committed_client_is_what_the_generator_makes(tmp_path):
    output = tmp_path / "nas_client"
    env = dict(os.environ, PATH=f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run([str(GENERATOR), "generate", "--path", str(SPEC_PATH), "--output-path", str(output),
                    "--overwrite", "--meta", "none"], cwd=ROOT, env=env, check=True, capture_output=True)
    differences = _tree_differences(filecmp.dircmp(output, ROOT / "nas_client", ignore=["__pycache__", ".ruff_cache"]))
    assert not differences, f"nas_client/ differs from the generator's output ({differences}): run `make client`"


def _tree_differences(comparison: filecmp.dircmp, prefix: str = "") -> list[str]:
    _, mismatched, errors = filecmp.cmpfiles(comparison.left, comparison.right, comparison.common_files,
                                             shallow=False)
    found = [f"{prefix}{name}" for name in (*comparison.left_only, *comparison.right_only, *mismatched, *errors)]
    for name, sub in comparison.subdirs.items():
        found += _tree_differences(sub, f"{prefix}{name}/")
    return found
