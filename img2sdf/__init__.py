"""img2sdf: image-conditioned 3-D shape generation at small data scale.

Data flow (one sub-package per stage): data → encoders → models → train → generate → eval, plus cli.
The design follows the seed study "From Weight-Space Diffusion to Latent-Space DeepSDF" (§2, §5, §6).
"""

__version__ = "0.1.0"
