"""Readers for paired EO/IR sequences (lazy, cached, prefetched)."""
