"""Models: the Zipformer encoder, SpecAugment, heads."""
