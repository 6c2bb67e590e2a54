"""The optimizer: Adam with each variable's gradient norm clipped after the replicas' gradients
are summed, as the starter code clips its towers' combined gradients."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="yt8m")
class ClippedAdam(keras.optimizers.Adam):
    """Adam that clips each variable's summed gradient to `clip_gradient_norm` (0: off).

    The starter's train.py clips once, after combining its towers' gradients
    (`clip_gradient_norms(combine_gradients(tower_gradients), …)`). Keras' own `clipnorm`
    clips each replica's share before they are summed (`BaseOptimizer.apply`, then the
    TensorFlow backend's `_all_reduce_sum_gradients`), so under MirroredStrategy a step could
    move up to num_replicas times as far. Here the clip follows the sum; on one device (the
    default replica context, whose sum is the gradient itself) it is Keras' clipnorm.
    """

    def __init__(self, clip_gradient_norm: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.clip_gradient_norm = clip_gradient_norm

    def _all_reduce_sum_gradients(self, grads_and_vars):
        summed = super()._all_reduce_sum_gradients(grads_and_vars)
        if not self.clip_gradient_norm:
            return summed
        return [(None if grad is None else tf.clip_by_norm(grad, self.clip_gradient_norm), var)
                for grad, var in summed]

    def get_config(self) -> dict:
        return {**super().get_config(), "clip_gradient_norm": self.clip_gradient_norm}
