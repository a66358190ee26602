"""nas_core is a pure engine: importing all of it loads nothing of the service."""

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("fastapi", "celery", "sqlalchemy", "api", "worker", "cli", "pydantic_settings", "alembic", "starlette")

PROBE = """
import importlib, json, pkgutil, sys
import nas_core
names = ["nas_core"] + [m.name for m in pkgutil.walk_packages(nas_core.__path__, "nas_core.")]
for name in names:
    importlib.import_module(name)
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"modules": names, "loaded": loaded}))
"""


def test_importing_every_engine_module_loads_no_service_package():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=root, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"nas_core.space", "nas_core.builder", "nas_core.trainer", "nas_core.export"} <= set(report["modules"])
    assert "torch" in report["loaded"]  # the probe really imported the engine
    assert sorted(set(FORBIDDEN) & set(report["loaded"])) == []


def test_predictions_load_no_torch():
    """The API process answers predictions with nas_core.inference: numpy, Pillow and onnxruntime, never torch."""
    code = "import sys, nas_core.inference, api.services.predict; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
