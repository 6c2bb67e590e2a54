"""Frame-level models (the starter code's `frame_level_models.py`): each maps `frames`
[batch, time, features] and `num_frames` [batch] to per-class probabilities, most through a
pooling layer (`trainer_module.layers`) and a video-level classifier. Hyperparameter names
and defaults are the starter code's (and the papers') flags, written once in each constructor.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from trainer_module.layers import (
    BagOfFrames,
    ContextGating,
    FrameMeanPooling,
    NetFV,
    NetVLAD,
    NeXtVLAD,
    RandomFrameSampler,
    SoftBagOfFrames,
    SqueezeExcitationGating,
)
from trainer_module.video_level_models import LogisticModel, video_level_classifier


class FrameLevelLogisticModel:
    """Logistic regression on the mean of each video's frames."""

    def __init__(self, l2_penalty: float = 1e-8, **unused_hparams):
        self.l2_penalty = l2_penalty

    def __call__(self, frames, num_frames, vocab_size: int):
        pooled = FrameMeanPooling()(frames, num_frames)
        return LogisticModel(l2_penalty=self.l2_penalty)(pooled, vocab_size)


class _PooledFramesModel:
    """Frames (randomly sampled in training) → a pooling layer → hidden layer (BN, ReLU6)
    → optional Context Gating → video-level classifier. Subclasses choose the pooling.

    Args:
        iterations: frames sampled from each video in training.
        sample_random_frames: sample `iterations` frames in training, else read them all.
        gating: Context Gating on the hidden layer.
        gating_remove_diag: Context Gating without each unit's gate on itself.
        video_level_classifier_model: the video-level model that classifies the hidden layer.
    """

    def __init__(self, hidden_size: int, add_batch_norm: bool, iterations: int = 30,
                 sample_random_frames: bool = True, gating: bool = False,
                 gating_remove_diag: bool = False,
                 video_level_classifier_model: str = "MoeModel", **hparams):
        self.hidden_size = hidden_size
        self.add_batch_norm = add_batch_norm
        self.iterations = iterations
        self.sample_random_frames = sample_random_frames
        self.gating = gating
        self.gating_remove_diag = gating_remove_diag
        self.classifier = video_level_classifier(video_level_classifier_model, hparams)

    def pooling_layer(self) -> keras.layers.Layer:
        raise NotImplementedError

    def __call__(self, frames, num_frames, vocab_size: int):
        if self.sample_random_frames:
            frames, num_frames = RandomFrameSampler(self.iterations)(frames, num_frames)
        if self.add_batch_norm:
            frames = keras.layers.BatchNormalization(name="input_bn")(frames)
        pooled = self.pooling_layer()(frames, num_frames)
        hidden = keras.layers.Dense(self.hidden_size, use_bias=not self.add_batch_norm,
                                    name="hidden")(pooled)
        if self.add_batch_norm:
            hidden = keras.layers.BatchNormalization(name="hidden_bn")(hidden)
        hidden = keras.layers.Activation("relu6")(hidden)
        if self.gating:
            hidden = ContextGating(self.add_batch_norm, self.gating_remove_diag,
                                   name="hidden_gating")(hidden)
        return self.classifier(hidden, vocab_size)


class DbofModel(_PooledFramesModel):
    """Deep Bag of Frames (the starter code's): frames projected onto cluster units and
    pooled over time, a hidden layer, then a video-level classifier.

    Args:
        dbof_cluster_size: cluster units the frames are projected onto.
        dbof_hidden_size: units of the hidden layer.
        dbof_add_batch_norm: batch normalization on the frames, clusters and hidden layer.
        dbof_pooling_method: how the cluster activations are pooled over time: max or average.
    """

    def __init__(self, dbof_cluster_size: int = 8192, dbof_hidden_size: int = 1024,
                 dbof_add_batch_norm: bool = True, dbof_pooling_method: str = "max",
                 **hparams):
        super().__init__(dbof_hidden_size, dbof_add_batch_norm, **hparams)
        self.cluster_size = dbof_cluster_size
        self.pooling_method = dbof_pooling_method
        self.pooling_layer()  # rejects an unknown pooling method now, not at build time

    def pooling_layer(self) -> keras.layers.Layer:
        return BagOfFrames(self.cluster_size, self.pooling_method, self.add_batch_norm,
                           name="bag_of_frames")


class GatedDbofModel(DbofModel):
    """DbofModel with Context Gating on the hidden layer (Miech et al. 2017)."""

    def __init__(self, gating: bool = True, **hparams):
        super().__init__(gating=gating, **hparams)


class SoftDbofModel(_PooledFramesModel):
    """DBoF with soft (softmax) cluster assignment and sum pooling, Context Gated.

    Args:
        softdbof_maxpool: also max-pool the assignments over frames.
    """

    def __init__(self, dbof_cluster_size: int = 4096, dbof_hidden_size: int = 1024,
                 dbof_add_batch_norm: bool = True, softdbof_maxpool: bool = False,
                 gating: bool = True, **hparams):
        super().__init__(dbof_hidden_size, dbof_add_batch_norm, gating=gating, **hparams)
        self.cluster_size = dbof_cluster_size
        self.max_pool = softdbof_maxpool

    def pooling_layer(self) -> keras.layers.Layer:
        return SoftBagOfFrames(self.cluster_size, self.add_batch_norm, self.max_pool,
                               name="soft_bag_of_frames")


class NetVLADModel(_PooledFramesModel):
    """NetVLAD pooling, hidden layer and Context Gating: the YouTube-8M 2017 winning model
    (Miech et al. 2017).

    Args:
        netvlad_cluster_size: clusters of the VLAD pooling.
        netvlad_hidden_size: units of the hidden layer.
        netvlad_add_batch_norm: batch normalization on the frames, assignments and hidden layer.
        lightvlad: NetRVLAD, without cluster centres.
    """

    def __init__(self, netvlad_cluster_size: int = 64, netvlad_hidden_size: int = 1024,
                 netvlad_add_batch_norm: bool = True, lightvlad: bool = False,
                 gating: bool = True, **hparams):
        super().__init__(netvlad_hidden_size, netvlad_add_batch_norm, gating=gating, **hparams)
        self.cluster_size = netvlad_cluster_size
        self.light = lightvlad

    def pooling_layer(self) -> keras.layers.Layer:
        return NetVLAD(self.cluster_size, self.add_batch_norm, self.light, name="netvlad")


class NetRVLADModel(NetVLADModel):
    """NetVLADModel without cluster centres ("light" NetRVLAD): fewer parameters, as good."""

    def __init__(self, lightvlad: bool = True, **hparams):
        super().__init__(lightvlad=lightvlad, **hparams)


class NetFVModel(_PooledFramesModel):
    """Learnable Fisher Vector pooling, hidden layer and Context Gating (Miech et al. 2017).

    Args:
        fv_cluster_size: Gaussians of the Fisher Vector pooling.
        fv_hidden_size: units of the hidden layer.
        fv_add_batch_norm: batch normalization on the frames, assignments and hidden layer.
        fv_couple_weights: the Gaussians' centres are a multiple of the assignment weights.
        fv_coupling_factor: the centres as a multiple of the assignment weights, when coupled.
    """

    def __init__(self, fv_cluster_size: int = 64, fv_hidden_size: int = 2048,
                 fv_add_batch_norm: bool = True, fv_couple_weights: bool = True,
                 fv_coupling_factor: float = 0.01, gating: bool = True, **hparams):
        super().__init__(fv_hidden_size, fv_add_batch_norm, gating=gating, **hparams)
        self.cluster_size = fv_cluster_size
        self.couple_weights = fv_couple_weights
        self.coupling_factor = fv_coupling_factor

    def pooling_layer(self) -> keras.layers.Layer:
        return NetFV(self.cluster_size, self.add_batch_norm, self.couple_weights,
                     self.coupling_factor, name="netfv")


class NeXtVLADModel:
    """NeXtVLAD (Lin et al., ECCV 2018 workshop; the best single model of the 2018 challenge):
    NeXtVLAD pooling, dropout, a hidden layer with batch normalization, SE context gating,
    then a video-level classifier. Defaults are the paper's; rgb and audio are pooled
    together, as this project's other pooling models do.

    Args:
        nextvlad_cluster_size: clusters of the NeXtVLAD pooling.
        nextvlad_hidden_size: units of the hidden layer.
        expansion: width multiplier of the frames before they are split into groups.
        groups: groups the expanded frames are split into, each pooled with attention.
        gating_reduction: bottleneck divisor of the squeeze-excitation gating.
        drop_rate: dropout rate on the pooled features.
    """

    def __init__(self, nextvlad_cluster_size: int = 128, nextvlad_hidden_size: int = 2048,
                 expansion: int = 2, groups: int = 8, gating_reduction: int = 8,
                 drop_rate: float = 0.5, video_level_classifier_model: str = "MoeModel",
                 **hparams):
        self.cluster_size = nextvlad_cluster_size
        self.hidden_size = nextvlad_hidden_size
        self.expansion = expansion
        self.groups = groups
        self.gating_reduction = gating_reduction
        self.drop_rate = drop_rate
        self.classifier = video_level_classifier(video_level_classifier_model, hparams)

    def __call__(self, frames, num_frames, vocab_size: int):
        pooled = NeXtVLAD(self.cluster_size, self.expansion, self.groups, name="nextvlad")(
            frames, num_frames)
        pooled = keras.layers.Dropout(self.drop_rate)(pooled)
        hidden = keras.layers.Dense(self.hidden_size, use_bias=False, name="hidden")(pooled)
        hidden = keras.layers.BatchNormalization(name="hidden_bn")(hidden)
        hidden = SqueezeExcitationGating(self.gating_reduction, name="se_gating")(hidden)
        return self.classifier(hidden, vocab_size)


class LstmModel:
    """Stacked LSTMs over the real frames; the last layer's final state feeds the classifier.

    Args:
        lstm_cells: units of each recurrent layer.
        lstm_layers: recurrent layers stacked.
    """

    recurrent_layer = keras.layers.LSTM

    def __init__(self, lstm_cells: int = 1024, lstm_layers: int = 2,
                 video_level_classifier_model: str = "MoeModel", **hparams):
        self.cells = lstm_cells
        self.layers = lstm_layers
        self.classifier = video_level_classifier(video_level_classifier_model, hparams)

    def __call__(self, frames, num_frames, vocab_size: int):
        mask = keras.layers.Lambda(
            lambda args: tf.sequence_mask(args[1], tf.shape(args[0])[1]))([frames, num_frames])
        outputs = frames
        for layer in range(self.layers):
            last = layer == self.layers - 1
            outputs = self.recurrent_layer(self.cells, return_sequences=not last)(
                outputs, mask=mask)
        return self.classifier(outputs, vocab_size)


class GruModel(LstmModel):
    """LstmModel with GRU cells (fewer parameters, often as accurate)."""

    recurrent_layer = keras.layers.GRU


FRAME_LEVEL_MODELS = {cls.__name__: cls for cls in (
    FrameLevelLogisticModel, DbofModel, GatedDbofModel, SoftDbofModel, NetVLADModel,
    NetRVLADModel, NetFVModel, NeXtVLADModel, LstmModel, GruModel)}
