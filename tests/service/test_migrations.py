"""The schema comes from Alembic only: upgrade head on an empty database, then no drift against the models."""

from __future__ import annotations

import secrets
import subprocess

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from api.db import Base, make_engine
from api.migrate import alembic_config
from tests.service.helpers import BIN, POSTGRES_ADMIN_URL, ROOT

# The `alembic` console script's own entry point with alembic.ini, one command after another in one interpreter
# (starting one per command cost seconds each); a failing command exits non-zero before the next one runs.
ALEMBIC_COMMANDS = """
from alembic.config import main
for args in (["upgrade", "head"], ["check"], ["downgrade", "base"], ["upgrade", "head"]):
    main(argv=args, prog="alembic")
    print("done:", *args, flush=True)
"""


def test_service_database_is_at_head_without_drift(app_service):
    head = ScriptDirectory.from_config(alembic_config(app_service.settings.database_url)).get_current_head()
    with app_service.runtime.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert context.get_current_revision() == head
        assert compare_metadata(context, Base.metadata) == []


def test_alembic_cli_upgrade_head_then_check_on_an_empty_database(app_service, tmp_path):
    if app_service.kind == "postgres":
        name = f"nas_test_mig_{secrets.token_hex(4)}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = app_service.settings.database_url.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    env = {**app_service.env, "NAS_DATABASE_URL": url}
    try:
        result = subprocess.run([str(BIN / "python"), "-c", ALEMBIC_COMMANDS], cwd=ROOT, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        done = [line for line in result.stdout.splitlines() if line.startswith("done:")]
        assert done == ["done: upgrade head", "done: check", "done: downgrade base", "done: upgrade head"], result
        engine = make_engine(url)
        with engine.connect() as connection:
            assert set(Base.metadata.tables) <= set(connection.dialect.get_table_names(connection))
        engine.dispose()
    finally:
        if app_service.kind == "postgres":
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
