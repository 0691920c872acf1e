"""Shared once by every Bookify service; imports no service. Three layers, each importing only
the ones above it in this list (tests/unit/test_layers.py holds it):

- `common/*.py`, `common/contracts/` — plain Python: errors, the clock, configuration, schemas
  and contracts (event schemas included), permissions, tokens, correlation ids and log format.
- `common/storage/` — SQLAlchemy: the declarative base, column types, engines and sessions,
  repositories, the outbox and audit tables, migrations. Never the framework.
- `common/runtime/` — the nameko extensions services are built from (README.md there).
"""
import warnings

# eventlet announces its own deprecation on import; nameko 3 still depends on it.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
