#!/usr/bin/env bash
# Before the first release only: regenerate 0001_initial from the models (nothing has shipped on it yet).
# After a release, schema changes get a new revision: `exchange makemigration "message"`.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f exchange/migrations/versions/0001_initial*.py
tmp=$(mktemp -d)
# Later hand-written revisions (e.g. 0002_audit_append_only) build on 0001: set them aside while it is generated.
mkdir "$tmp/later"
find exchange/migrations/versions -maxdepth 1 -name '0*.py' ! -name '0001_*' -exec mv {} "$tmp/later/" \;
trap 'mv "$tmp"/later/*.py exchange/migrations/versions/ 2>/dev/null; rm -rf "$tmp"' EXIT
.venv/bin/python - "$tmp" <<'PY'
import sys
from alembic import command
from exchange.core.migrate import alembic_config
cfg = alembic_config(f"sqlite:///{sys.argv[1]}/empty.db")
cfg.set_main_option("file_template", "%%(rev)s")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001_initial")
PY
.venv/bin/ruff format -q exchange/migrations/versions/0001_initial.py || true
echo "regenerated exchange/migrations/versions/0001_initial.py"
