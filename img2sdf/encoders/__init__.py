"""Image encoders: DINOv2 (paper §2.3) and an offline default; the per-view feature cache."""
