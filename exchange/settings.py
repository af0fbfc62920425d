"""All configuration in one place, read from EXCHANGE_* environment variables (and an optional .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", env_file=".env", extra="ignore")

    # The embedded default: an SQLite file under the repo, nothing to set up.
    # Production: postgresql+psycopg://user@host:5432/dbname
    database_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'exchange.db'}"
    # When set (redis://127.0.0.1:6379/0), rounds go to an RQ queue served by `exchange worker`.
    redis_url: str | None = None
    queue_name: str = "exchange-rounds"
    # Signs nothing secret-bearing by itself (sessions are server-side), but seeds CSRF tokens.
    secret_key: str = "dev-only-change-me"
    # Cookies: Secure flag should be on behind HTTPS in production.
    cookie_secure: bool = False
    session_idle_minutes: int = 120
    session_absolute_hours: int = 24
    upload_dir: Path = REPO_ROOT / "var" / "uploads"
    max_upload_bytes: int = 10 * 1024 * 1024
    default_locale: str = "zh-CN"
    # Optional online geocoder: "nominatim" (via geopy) or an HTTP URL template; offline table is the fallback.
    geocoder: str | None = None
    geocoder_timeout_s: float = 2.0
    # Requests per minute per client address (static files excluded); 0 switches the limit off.
    rate_limit_per_minute: int = 1200
    # Statistics (dashboard, public table) are recomputed at most this often per worker; 0 = on every request.
    stats_cache_seconds: float = 30.0
    # A worker that has not reported for this long is considered dead and its round failed.
    job_heartbeat_timeout_s: int = 120


@lru_cache
def get_settings() -> Settings:
    return Settings()
