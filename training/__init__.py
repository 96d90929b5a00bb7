"""Training, evaluation and export of the Dubai land-cover model (never imported by the plugin)."""
