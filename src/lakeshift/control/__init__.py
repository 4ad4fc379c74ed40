"""The control DB.  This package's own module imports nothing heavy: the CLI reads
DEFAULT_DB without loading SQLAlchemy (``copy`` never needs it)."""

DEFAULT_DB = "sqlite:///lakeshift.db"
