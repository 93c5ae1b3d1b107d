"""absl command-line programs; their logic lives in importable modules."""
