"""Audio decoding, chunking, label parsers, the chunk Dataset and the LightningDataModule."""
