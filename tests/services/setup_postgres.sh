#!/usr/bin/env bash
# Start Debian's PostgreSQL (listening on localhost only, its default) and create the role the
# services tests create their databases with. Run as root, after `apt-get install postgresql`.
# Idempotent: a running cluster and an existing role are left as they are.
set -euo pipefail
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_ctlcluster "$version" main status >/dev/null || pg_ctlcluster "$version" main start
for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 && break; sleep 0.5; done
pg_isready -h 127.0.0.1
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mea_test') THEN
    CREATE ROLE mea_test LOGIN PASSWORD 'mea_test' CREATEDB;
  END IF;
END $$;
SQL
echo "PostgreSQL $version on 127.0.0.1:5432, role mea_test (MEA_TEST_POSTGRES=postgresql://mea_test:mea_test@127.0.0.1:5432/postgres)"
