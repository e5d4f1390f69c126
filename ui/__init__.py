"""Qt widgets of CSKNet Studio. They observe core objects; no model maths here."""
