"""Shaping: API pages in, export rows out (exact columns, order and types), vectorised with polars."""
