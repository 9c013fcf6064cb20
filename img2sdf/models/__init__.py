"""Networks: the shared SDF decoder (paper §5), the latent DiT (§6) and the diffusion maths."""
