"""Shard files: the one home of how the project finds its TFRecord shards on any filesystem
TensorFlow reads, and writes its own output files. Every package may use it; it uses no
other project code, so the serving image and the data tools ship it as it is."""
