"""SQLAlchemy: tables, column types, engines and sessions every service's database
shares. Imports neither nameko, eventlet nor kombu: domain code may depend on it."""
