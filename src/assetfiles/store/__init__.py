"""Adapters that persist: the catalog (SQL) and the blob store (bytes). SQL lives only here."""
