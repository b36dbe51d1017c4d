"""Figures and reports, written as files (PNG through matplotlib's Agg canvas, no display needed)."""
