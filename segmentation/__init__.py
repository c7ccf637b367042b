"""SAM mask-decoder fine-tuning and SAM-assisted annotation: not implemented yet (see the README)."""
