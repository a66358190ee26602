"""``make openapi``: write the app's OpenAPI document to ``openapi.json`` (sorted keys, trailing newline).

``python -m cli.openapi --check`` exits 1 when the committed file differs from what the app serves.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "openapi.json"


def render_spec() -> str:
    """The app's OpenAPI document as committed: built against a throwaway SQLite data dir (nothing is opened)."""
    from api.main import create_app
    from api.settings import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_url=f"sqlite:///{data_dir}/nas.db",
                            storage_url=f"file://{data_dir}/objects", broker_url="")
        app = create_app(settings)
        spec = app.openapi()
        app.state.engine.dispose()
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    spec = render_spec()
    if "--check" in argv:
        if not SPEC_PATH.exists() or SPEC_PATH.read_text() != spec:
            print(f"{SPEC_PATH.name} is out of date; run `make openapi`", file=sys.stderr)
            return 1
        return 0
    SPEC_PATH.write_text(spec)
    print(f"wrote {SPEC_PATH.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
