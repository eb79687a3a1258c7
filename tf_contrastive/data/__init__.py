"""Input pipelines: decoders, augmentations, view makers and build_dataset."""
