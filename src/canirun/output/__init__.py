"""Rendering and writing: the only place that turns results into text or files."""
