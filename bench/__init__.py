"""lsrkit."""
