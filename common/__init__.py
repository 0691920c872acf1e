"""Shared once by every Bookify service; imports no service."""
import warnings

# eventlet announces its own deprecation on import; nameko 3 still depends on it.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
