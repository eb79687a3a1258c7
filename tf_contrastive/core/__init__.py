"""Shared infrastructure: config, distribution, schedules, checkpoints, summaries, export."""
