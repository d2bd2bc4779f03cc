"""Reusable Amaranth blocks. They know nothing of any model or schedule."""
