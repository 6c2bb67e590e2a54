"""Pure TensorFlow/Keras code for YouTube-8M: readers, models, losses, metrics, export.

Nothing here imports TFX, so the same code runs in the Trainer, in the CLIs and in tests.
"""
