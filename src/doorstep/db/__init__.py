"""Database access: engine and sessions, column types, the declarative base, migrations."""
