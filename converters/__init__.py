"""MVTec-layout readers and YOLO/COCO writers."""
