"""The services tests run the pipeline the way a lab operates it: a real ``mea-pipeline server``
(SQLite, or PostgreSQL for the workers), commands as subprocesses that find it on their own,
deployments, workers, a Dask cluster, the UI in Chromium.

Marked ``services`` or ``browser``, deselected by ``make test`` and run by ``make test-services``.
What a machine lacks (Chromium, Playwright, a PostgreSQL it may create databases on) makes the
tests that need it skip with the reason and the fix. Every server listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

from lab_server import running_server

# The role the tests create their databases with (setup_postgres.sh creates it; .ci/run runs that).
POSTGRES_ENV = "MEA_TEST_POSTGRES"
POSTGRES_DEFAULT = "postgresql://mea_test:mea_test@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def mea_server(tmp_path_factory):
    """One SQLite-backed ``mea-pipeline server`` for the browser, Dask and deployment tests."""
    with running_server(tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database (``postgresql+asyncpg://`` URL) for one session, dropped afterwards."""
    import asyncio

    import asyncpg

    admin = os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)
    name = f"mea_test_{uuid.uuid4().hex[:10]}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(admin, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(execute(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        shown = re.sub(r":[^:@/]*@", ":***@", admin)
        pytest.skip(f"PostgreSQL: cannot create a database as {shown} ({type(exc).__name__}: {exc}); as root run "
                    f"tests/services/setup_postgres.sh (apt-get install postgresql first), or set {POSTGRES_ENV}")
    user_and_host = admin.split("://", 1)[1].rsplit("/", 1)[0]
    yield f"postgresql+asyncpg://{user_and_host}/{name}"
    asyncio.run(execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
