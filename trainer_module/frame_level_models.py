"""Frame-level models (the starter code's `frame_level_models.py`): each maps `frames`
[batch, time, features] and `num_frames` [batch] to per-class probabilities, most through a
pooling layer (`trainer_module.layers`) and a video-level classifier. Hyperparameter names
and defaults are the starter code's (and the papers') flags, each declared once beside its
model (`Hparams`).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from trainer_module.hparams import (
    fraction,
    hyperparameters,
    one_of,
    positive,
    redefault,
    setting,
)
from trainer_module.layers import (
    POOLING_METHODS,
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
from trainer_module.video_level_models import (
    ClassifiedHparams,
    LogisticHparams,
    LogisticModel,
    MoeHparams,
)


class FrameLevelLogisticModel:
    """Logistic regression on the mean of each video's frames."""

    Hparams = LogisticHparams

    def __init__(self, hparams: LogisticHparams):
        self.hparams = hparams

    def __call__(self, frames, num_frames, vocab_size: int):
        pooled = FrameMeanPooling()(frames, num_frames)
        return LogisticModel(self.hparams)(pooled, vocab_size)


@hyperparameters
class PooledFramesHparams(ClassifiedHparams):
    iterations: int = setting(30, "frames sampled from each video in training", positive)
    sample_random_frames: bool = setting(
        True, "sample --iterations frames in training, else read them all")
    gating: bool = setting(False, "Context Gating on the hidden layer")
    gating_remove_diag: bool = redefault(MoeHparams, "gating_remove_diag", False)


class _PooledFramesModel:
    """Frames (randomly sampled in training) → a pooling layer → hidden layer (BN, ReLU6)
    → optional Context Gating → video-level classifier. Subclasses choose the pooling and
    name their hidden layer's size and batch normalization."""

    def __init__(self, hparams: PooledFramesHparams, classifier, hidden_size: int,
                 add_batch_norm: bool):
        self.hparams = hparams
        self.classifier = classifier
        self.hidden_size = hidden_size
        self.add_batch_norm = add_batch_norm

    def pooling_layer(self) -> keras.layers.Layer:
        raise NotImplementedError

    def __call__(self, frames, num_frames, vocab_size: int):
        if self.hparams.sample_random_frames:
            frames, num_frames = RandomFrameSampler(self.hparams.iterations)(frames, num_frames)
        if self.add_batch_norm:
            frames = keras.layers.BatchNormalization(name="input_bn")(frames)
        pooled = self.pooling_layer()(frames, num_frames)
        hidden = keras.layers.Dense(self.hidden_size, use_bias=not self.add_batch_norm,
                                    name="hidden")(pooled)
        if self.add_batch_norm:
            hidden = keras.layers.BatchNormalization(name="hidden_bn")(hidden)
        hidden = keras.layers.Activation("relu6")(hidden)
        if self.hparams.gating:
            hidden = ContextGating(self.add_batch_norm, self.hparams.gating_remove_diag,
                                   name="hidden_gating")(hidden)
        return self.classifier(hidden, vocab_size)


@hyperparameters
class DbofHparams(PooledFramesHparams):
    dbof_cluster_size: int = setting(8192, "cluster units the frames are projected onto",
                                     positive)
    dbof_hidden_size: int = setting(1024, "units of the hidden layer", positive)
    dbof_add_batch_norm: bool = setting(
        True, "batch normalization on the frames, clusters and hidden layer")
    dbof_pooling_method: str = setting(
        "max", "how the cluster activations are pooled over time: max or average",
        one_of(*POOLING_METHODS))


class DbofModel(_PooledFramesModel):
    """Deep Bag of Frames (the starter code's): frames projected onto cluster units and
    pooled over time, a hidden layer, then a video-level classifier."""

    Hparams = DbofHparams

    def __init__(self, hparams: DbofHparams, classifier):
        super().__init__(hparams, classifier, hparams.dbof_hidden_size,
                         hparams.dbof_add_batch_norm)

    def pooling_layer(self) -> keras.layers.Layer:
        return BagOfFrames(self.hparams.dbof_cluster_size, self.hparams.dbof_pooling_method,
                           self.add_batch_norm, name="bag_of_frames")


@hyperparameters
class GatedDbofHparams(DbofHparams):
    gating: bool = redefault(PooledFramesHparams, "gating", True)


class GatedDbofModel(DbofModel):
    """DbofModel with Context Gating on the hidden layer (Miech et al. 2017)."""

    Hparams = GatedDbofHparams


@hyperparameters
class SoftDbofHparams(PooledFramesHparams):
    dbof_cluster_size: int = redefault(DbofHparams, "dbof_cluster_size", 4096)
    dbof_hidden_size: int = redefault(DbofHparams, "dbof_hidden_size", 1024)
    dbof_add_batch_norm: bool = redefault(DbofHparams, "dbof_add_batch_norm", True)
    softdbof_maxpool: bool = setting(False, "also max-pool the assignments over frames")
    gating: bool = redefault(PooledFramesHparams, "gating", True)


class SoftDbofModel(_PooledFramesModel):
    """DBoF with soft (softmax) cluster assignment and sum pooling, Context Gated."""

    Hparams = SoftDbofHparams

    def __init__(self, hparams: SoftDbofHparams, classifier):
        super().__init__(hparams, classifier, hparams.dbof_hidden_size,
                         hparams.dbof_add_batch_norm)

    def pooling_layer(self) -> keras.layers.Layer:
        return SoftBagOfFrames(self.hparams.dbof_cluster_size, self.add_batch_norm,
                               self.hparams.softdbof_maxpool, name="soft_bag_of_frames")


@hyperparameters
class NetVLADHparams(PooledFramesHparams):
    netvlad_cluster_size: int = setting(64, "clusters of the VLAD pooling", positive)
    netvlad_hidden_size: int = setting(1024, "units of the hidden layer", positive)
    netvlad_add_batch_norm: bool = setting(
        True, "batch normalization on the frames, assignments and hidden layer")
    lightvlad: bool = setting(False, "NetRVLAD, without cluster centres")
    gating: bool = redefault(PooledFramesHparams, "gating", True)


class NetVLADModel(_PooledFramesModel):
    """NetVLAD pooling, hidden layer and Context Gating: the YouTube-8M 2017 winning model
    (Miech et al. 2017)."""

    Hparams = NetVLADHparams

    def __init__(self, hparams: NetVLADHparams, classifier):
        super().__init__(hparams, classifier, hparams.netvlad_hidden_size,
                         hparams.netvlad_add_batch_norm)

    def pooling_layer(self) -> keras.layers.Layer:
        return NetVLAD(self.hparams.netvlad_cluster_size, self.add_batch_norm,
                       self.hparams.lightvlad, name="netvlad")


@hyperparameters
class NetRVLADHparams(NetVLADHparams):
    lightvlad: bool = redefault(NetVLADHparams, "lightvlad", True)


class NetRVLADModel(NetVLADModel):
    """NetVLADModel without cluster centres ("light" NetRVLAD): fewer parameters, as good."""

    Hparams = NetRVLADHparams


@hyperparameters
class NetFVHparams(PooledFramesHparams):
    fv_cluster_size: int = setting(64, "Gaussians of the Fisher Vector pooling", positive)
    fv_hidden_size: int = setting(2048, "units of the hidden layer", positive)
    fv_add_batch_norm: bool = setting(
        True, "batch normalization on the frames, assignments and hidden layer")
    fv_couple_weights: bool = setting(
        True, "the Gaussians' centres are a multiple of the assignment weights")
    fv_coupling_factor: float = setting(
        0.01, "the centres as a multiple of the assignment weights, when coupled")
    gating: bool = redefault(PooledFramesHparams, "gating", True)


class NetFVModel(_PooledFramesModel):
    """Learnable Fisher Vector pooling, hidden layer and Context Gating (Miech et al. 2017)."""

    Hparams = NetFVHparams

    def __init__(self, hparams: NetFVHparams, classifier):
        super().__init__(hparams, classifier, hparams.fv_hidden_size, hparams.fv_add_batch_norm)

    def pooling_layer(self) -> keras.layers.Layer:
        return NetFV(self.hparams.fv_cluster_size, self.add_batch_norm,
                     self.hparams.fv_couple_weights, self.hparams.fv_coupling_factor,
                     name="netfv")


@hyperparameters
class NeXtVLADHparams(ClassifiedHparams):
    nextvlad_cluster_size: int = setting(128, "clusters of the NeXtVLAD pooling", positive)
    nextvlad_hidden_size: int = setting(2048, "units of the hidden layer", positive)
    expansion: int = setting(2, "width multiplier of the frames before they are split into "
                                "groups", positive)
    groups: int = setting(8, "groups the expanded frames are split into, each pooled with "
                             "attention", positive)
    gating_reduction: int = setting(8, "bottleneck divisor of the squeeze-excitation gating",
                                    positive)
    drop_rate: float = setting(0.5, "dropout rate on the pooled features", fraction)


class NeXtVLADModel:
    """NeXtVLAD (Lin et al., ECCV 2018 workshop; the best single model of the 2018 challenge):
    NeXtVLAD pooling, dropout, a hidden layer with batch normalization, SE context gating,
    then a video-level classifier. Defaults are the paper's; rgb and audio are pooled
    together, as this project's other pooling models do."""

    Hparams = NeXtVLADHparams

    def __init__(self, hparams: NeXtVLADHparams, classifier):
        self.hparams = hparams
        self.classifier = classifier

    def __call__(self, frames, num_frames, vocab_size: int):
        h = self.hparams
        pooled = NeXtVLAD(h.nextvlad_cluster_size, h.expansion, h.groups, name="nextvlad")(
            frames, num_frames)
        pooled = keras.layers.Dropout(h.drop_rate)(pooled)
        hidden = keras.layers.Dense(h.nextvlad_hidden_size, use_bias=False, name="hidden")(pooled)
        hidden = keras.layers.BatchNormalization(name="hidden_bn")(hidden)
        hidden = SqueezeExcitationGating(h.gating_reduction, name="se_gating")(hidden)
        return self.classifier(hidden, vocab_size)


@hyperparameters
class LstmHparams(ClassifiedHparams):
    lstm_cells: int = setting(1024, "units of each recurrent layer", positive)
    lstm_layers: int = setting(2, "recurrent layers stacked", positive)


class LstmModel:
    """Stacked LSTMs over the real frames; the last layer's final state feeds the classifier."""

    Hparams = LstmHparams
    recurrent_layer = keras.layers.LSTM

    def __init__(self, hparams: LstmHparams, classifier):
        self.hparams = hparams
        self.classifier = classifier

    def __call__(self, frames, num_frames, vocab_size: int):
        mask = keras.layers.Lambda(
            lambda args: tf.sequence_mask(args[1], tf.shape(args[0])[1]))([frames, num_frames])
        outputs = frames
        for layer in range(self.hparams.lstm_layers):
            last = layer == self.hparams.lstm_layers - 1
            outputs = self.recurrent_layer(self.hparams.lstm_cells, return_sequences=not last)(
                outputs, mask=mask)
        return self.classifier(outputs, vocab_size)


class GruModel(LstmModel):
    """LstmModel with GRU cells (fewer parameters, often as accurate)."""

    recurrent_layer = keras.layers.GRU


FRAME_LEVEL_MODELS = {cls.__name__: cls for cls in (
    FrameLevelLogisticModel, DbofModel, GatedDbofModel, SoftDbofModel, NetVLADModel,
    NetRVLADModel, NetFVModel, NeXtVLADModel, LstmModel, GruModel)}
