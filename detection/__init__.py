"""YOLO-World (and plain YOLO) defect detection: not implemented yet (see the README)."""
