"""The microlensing event catalog: detections, point-lens models and classes per partition."""
