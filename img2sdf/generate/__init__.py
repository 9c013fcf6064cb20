"""Generation: mesh extraction from an SDF decoder, latent fitting, image → mesh."""
