"""The audit results database (hubmem.store.db)."""
