"""Training loops (auto-decoder fit, latent DiT) with shared checkpointing and DDP support."""
