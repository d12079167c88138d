"""The values of the experiment configurations (:mod:`training.configs` reads and checks them).

``DEFAULT`` holds every key with its default and the reason for it; each preset of ``PRESETS`` is the
default plus its overrides, with the reason for each. Plain data: no torch, no numpy.
"""

from __future__ import annotations

from typing import Any

DEFAULT: dict[str, Any] = {
    "name": "default",
    # ---- model ----
    "clip_length": 16,  # S: frames per snippet; I3D's Kinetics models and RTFM's features use 16
    "num_snippets": 32,  # K: snippets per video the head sees; RTFM / Sultani split a video into 32
    "frame_stride": 1,  # take every frame: fights are fast, skipping frames loses the blows
    "frame_size": 224,  # crop the model sees; 224 is I3D's Kinetics input
    "resize_short_side": 224,  # == frame_size: the crop keeps the whole short side of the camera in view
    # frames per second the model sees, taken by timestamp from any camera or file (edge_runtime.resample),
    # so a snippet spans the same time at 12 and at 30 fps; 0 takes every decoded frame (older models)
    "frame_rate": 0.0,
    # what the backbone sees (edge_runtime.preprocess): "rgb" frames, or "flow", dense optical flow between
    # consecutive frames (I3D's second stream), which carries over to scenes never seen in training
    "input_modality": "rgb",
    # flow only: the flow is computed on frames of this short side, then area-resized to resize_short_side
    # (limbs a few pixels wide still move by whole pixels there); 0 computes it at resize_short_side
    "flow_short_side": 0,
    # flow only: a panning or shaking camera's motion taken out (edge_runtime.camera_motion): "median"
    # subtracts each flow frame's median vector, "align" moves the frame back by the camera's fitted shift,
    # zoom and turn and computes the flow again; "keep" leaves the flow as computed
    "flow_camera_motion": "keep",
    # how camera frames are shrunk to resize_short_side (edge_runtime.preprocess.resize_frame, the same in
    # training and on the device): "area" averages every source pixel (no aliasing); "linear" costs a seventh
    # of it (0.3 against 2.3 ms of CPU a 640 x 360 frame), a share of the device's CPU at eight cameras
    "interpolation": "area",
    "width_multiplier": 1.0,  # 1.0 = published I3D widths, so Kinetics checkpoints load by name
    "mtn_hidden_dim": 512,  # channels per MTN branch, as RTFM (its 2048-d features -> 512)
    "mtn_num_scales": 3,  # dilated temporal convs with dilations 1, 2, 4 (RTFM's pyramid)
    "mil_attention_dim": 128,  # gated-attention MIL hidden size (Ilse et al., 2018 use 128)
    "scorer_layers": 2,  # hidden layers of the snippet scorer: RTFM's MLP D -> 512 -> 128 -> 1 (0 = linear)
    # the head's input standardised per feature with the mean and standard deviation of the training set's
    # snippet features, measured once before training and kept in the head (it travels in the checkpoint and
    # the exported head): for a frozen backbone's cached features only (i3dmtn train --features)
    "standardize_features": False,
    "dropout": 0.5,  # head dropout; weak video-level labels overfit fast, 0.5 is a common middle (RTFM 0.7)
    "bn_momentum": 0.01,  # backbone BatchNorm running-stat update (TF's decay 0.99, as the published I3D)
    # share of the I3D stem's filters that start as temporal derivatives (training.model.motion_init): from
    # scratch, the backbone then sees motion from the first step (docs/quality.md); Kinetics weights replace it
    "motion_filters": 0.5,
    # a random forest over hand-made statistics of the input flow (edge_runtime.motion_stats), fitted on the
    # training windows after the network trains and fused into the snippet score (flow input only); 0 = none
    "motion_forest_trees": 0,
    # the fewest training windows in a leaf of the forest (scikit-learn's min_samples_leaf): leaves of one
    # window learn single clips; acts only with a forest
    "motion_forest_leaf": 2,
    # the forest's share of the fused score, (1 - w) * network + w * forest; acts only with a forest
    "motion_weight": 0.5,
    # the videos the shipped forest is fitted on: "train+val" refits it on both once the fused threshold and
    # the validation AUCs are measured with the forest of the training videos alone (more scenes: +0.017 video
    # AUC on the real folds, docs/real-video.md); "train" ships that forest
    "motion_forest_data": "train+val",
    # the horizontal crop positions (of the model-size frame) the forest scores: 1 = the network's centre crop;
    # 3 = also the left and right edges, a snippet's forest score the max over them (the forest is still fitted
    # on centre crops, the network still sees only the centre): a wide frame's edges are half of its width
    # (forest alone: video AUC 0.807 -> 0.826 on the real folds, docs/real-video.md). Acts only with a forest
    "motion_crops": 1,
    # several people's poses (MoveNet MultiPose, fetched by `i3dmtn pose fetch`): a second forest over window
    # statistics of the people's poses (edge_runtime.pose_stats), fitted beside the motion forest and fused as
    # (1 - pose_weight) * (network with motion forest) + pose_weight * pose forest; 0 = none (needs a motion forest)
    "pose_forest_trees": 0,
    "pose_forest_leaf": 2,  # the fewest training windows in a leaf of the pose forest; acts only with it
    "pose_weight": 0.4,  # the pose forest's share (0.4 the best of 0.25 / 0.4 / 0.5 on two fold seeds, docs)
    # the pose model sees every 3rd frame of the contract (5 fps at 15): better than every frame on the
    # cross-validation (a wrist's move over 0.2 s is less noise) and a third of the work (docs/real-video.md)
    "pose_every": 3,
    "pose_height": 384,  # pixels high the pose model sees a frame at (256 px found fewer people and gained nothing)
    "pose_model": "",  # its OpenVINO IR; "" = where `i3dmtn pose fetch` puts it
    # ---- training ----
    "epochs": 50,  # enough for the head to converge on a UCF-Crime-sized set; early stopping ends sooner
    "batch_size": 8,  # videos per step; K*S = 512 frames each is heavy end to end at 224 px
    "learning_rate": 1e-4,  # fine-tuning a pretrained backbone end to end; RTFM's 1e-3 is for the head only
    "weight_decay": 5e-3,  # RTFM's Adam weight decay
    "warmup_epochs": 2,  # linear warmup: keeps a random head from wrecking pretrained backbone weights
    "min_lr_ratio": 0.01,  # cosine decay floor as a fraction of learning_rate
    # stochastic weight averaging (training.weight_average): the weights of the last N epochs averaged into
    # the model that is kept, the learning rate held where that phase begins, BatchNorm measured again; 0 = off
    "swa_epochs": 0,
    "grad_clip": 1.0,  # max gradient L2 norm (0 disables); MIL losses spike on noisy weak labels
    "grad_accum_steps": 4,  # 8 x 4 = 32 videos per update, RTFM's batch size
    "amp": "auto",  # mixed precision: auto = on with CUDA, off on CPU (one of AMP_MODES)
    "early_stopping_patience": 10,  # epochs without a better validation AUC before stopping (0 disables)
    # what best.pt holds: the epoch of the highest validation AUC ("val_auc"), or the last epoch ("last"),
    # for validation splits too small to rank epochs by (a few scenes: the ranking is noise)
    "best_checkpoint": "val_auc",
    "seed": 42,  # reproducible splits, initialisation and augmentation
    "val_fraction": 0.2,  # share of each class held out for validation when the data has no val/ split
    # which K snippets a training item holds (training.data.sampling): "segments" = RTFM's one snippet per
    # uniform segment of the whole video (long untrimmed videos, a video-level view); "window" = K consecutive
    # snippets at a random start, what the device's ring holds
    "snippet_sampling": "segments",
    "num_workers": 4,  # decoding video is the bottleneck; 4 workers keep one GPU fed
    # ---- loss: total = a1 * anomaly + a2 * smoothness + a3 * sparsity ----
    "loss_anomaly_weight": 1.0,  # a1: the classification term is the reference scale
    "loss_smoothness_weight": 8e-4,  # a2: RTFM's temporal smoothness weight
    "loss_sparsity_weight": 8e-3,  # a3: RTFM's sparsity weight (anomalies are rare within a video)
    "topk_ratio": 0.1,  # top-k snippets for the MIL term: k = max(1, round(K / 10)) = 3 for K = 32 (RTFM)
    "frame_loss_weight": 0.0,  # frame-level BCE; 0 because the usual training sets have video labels only
    "video_loss_weight": 1.0,  # BCE of the attention-pooled video score: the weak label's own term
    "mil_loss_weight": 1.0,  # top-k MIL BCE next to the video-score BCE, same scale
    # BCE of every snippet against the video's label: only for trimmed clips, whose label holds throughout;
    # 0 for the untrimmed videos of the MIL setting, where most snippets of an anomalous video are normal
    "snippet_loss_weight": 0.0,
    # prefix-consistency term (training.train_step): the head's newest score over random prefixes of the
    # window should match the full window's score of that snippet. The MTN is causal, so the two are already
    # equal by construction and the term is 0: off (kept for experiments with non-causal heads)
    "streaming_loss_weight": 0.0,
    # ---- augmentation (training only) ----
    "augment_flip": True,  # horizontal flip: a fight mirrored is still a fight
    "augment_crop_jitter": 16,  # max shift (pixels of the resized frame) of the crop window from the centre
    "augment_zoom": 0.15,  # frames enlarged by up to 15 %: people nearer or farther from the camera
    # mixup's alpha (training.mixup): each batch's videos and labels mixed with a shuffled copy; 0 = off
    "augment_mixup": 0.0,
}

# Each preset is the default plus the overrides below; the comments say why.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # UCF-Crime-like: long untrimmed surveillance videos, video-level labels, training usually on cached
    # features, so RTFM's head recipe applies as published.
    "fight": {
        "name": "fight",
        "learning_rate": 1e-3,  # RTFM's Adam learning rate for the head on cached features
        "dropout": 0.7,  # RTFM's dropout on UCF-Crime
        "batch_size": 32,  # features are small: RTFM's batch size in one step
        "grad_accum_steps": 1,
        "warmup_epochs": 1,
    },
    # RWF-2000-like (5 s clips at 30 fps, 150 frames) / XD-Violence-like: short trimmed clips where the
    # violence fills much of the clip, so fewer snippets and a larger top-k share.
    "violence": {
        "name": "violence",
        "num_snippets": 10,  # ceil(150 / 16) = 10 snippets cover a whole RWF-2000 clip
        "topk_ratio": 0.3,  # k = 3 of 10: violence spans a large part of a trimmed clip
        "epochs": 30,  # a few thousand clips converge sooner than UCF-Crime
        "batch_size": 16,  # 160 frames per clip instead of 512: twice the clips per step
        "grad_accum_steps": 2,
        "early_stopping_patience": 8,
    },
    # Real surveillance video (12-30 fps, 320x240 to 1080p), trained from scratch on 2 CPU cores in minutes:
    # with no pretrained weights and a few hundred clips from a few dozen scenes, a model of RGB frames learns
    # the scenes (video AUC 0.58 on unseen scenes); a small backbone on optical flow learns the motion.
    "surveillance": {
        "name": "surveillance",
        "input_modality": "flow",  # motion, not appearance: carries over to scenes never seen in training
        "frame_rate": 15.0,  # every camera resampled to 15 fps: a snippet is 0.53 s at any source rate
        "clip_length": 8,  # S: 8 frames at 15 fps, about the length of a blow
        "num_snippets": 3,  # K: 1.6 s of context, within the ~2 s clips such data sets hold
        "frame_size": 64,  # flow of people at surveillance distances survives 64 px; 4x cheaper than 128
        "resize_short_side": 72,  # a margin around the 64 px crop for the training crop jitter
        # the flow computed at 112 px and area-resized to 72: the motion forest's statistics gained 0.02 on the
        # cross-validation (the fused recipe 0.770 -> 0.792) and the network lost nothing (docs/real-video.md);
        # the device pays for DIS flow on 2.4x the pixels
        "flow_short_side": 112,
        # a moving camera's own motion taken out: the frame aligned to the previous one by the camera's shift,
        # zoom and turn before the flow (the median vector alone: 0.813 -> 0.850 on the cross-validation); the
        # same cross-validation at the same AUC (accuracy +0.041 and -0.015 on two fold seeds), and its clips re-made as a
        # hand-held or zooming camera films them lose 0.012 and 0.007 of video AUC instead of 0.067 and 0.045
        # (docs/real-video.md, "Aligned before the flow")
        "flow_camera_motion": "align",
        "width_multiplier": 0.125,  # stem 8 channels, 128-d features: trains in minutes on 2 cores
        "mtn_hidden_dim": 64,
        "mil_attention_dim": 32,
        "scorer_layers": 1,
        "dropout": 0.3,
        "bn_momentum": 0.1,  # from scratch in a few hundred steps (as debug)
        "motion_filters": 0.0,  # the input is already motion; temporal-derivative stems would see acceleration
        "epochs": 40,  # 40 at 2e-3 beat 20 at 1e-3 on every fold of the cross-validation (docs/real-video.md)
        "batch_size": 8,
        "learning_rate": 2e-3,  # from scratch
        "weight_decay": 1e-4,
        "warmup_epochs": 1,
        "grad_accum_steps": 1,
        "amp": "off",
        "early_stopping_patience": 0,  # a small validation split is too noisy to stop on
        "best_checkpoint": "last",  # ... or to rank epochs by: best.pt is the last epoch
        "num_workers": 0,  # the frame cache makes loading cheap; no worker processes on 2 cores
        "snippet_sampling": "window",  # K consecutive snippets, as the device's ring holds
        # a few scenes only: the crop anywhere in the frame (its whole width over the epochs); no zoom (the
        # exploration runs of docs/real-video.md trained this way)
        "augment_crop_jitter": 72,
        "augment_zoom": 0.0,
        # trimmed clips: a fight clip is a fight throughout, so every snippet is pushed towards the label
        "topk_ratio": 1.0,
        # RTFM's smoothness and sparsity terms assume long untrimmed videos where a fight is rare; in a
        # trimmed fight clip it is everywhere, and sparsity would push its scores down
        "loss_smoothness_weight": 0.0,
        "loss_sparsity_weight": 0.0,
        # flow statistics + a forest scored 0.808 on the folds where this network scored 0.747, failing on other
        # scenes (docs/real-video.md): the two fused; 500 trees as in that experiment
        "motion_forest_trees": 500,
        # the forest's share: on the cross-validation folds the forest alone beat the network (0.80 against
        # 0.75) and 0.75 matched it while keeping the network's lift on the folds where it is stronger; the
        # weight sweep of benchmarks.real_quality since: 0.806 at 0.5, 0.821 at 0.75, 0.828 at 0.9 and 1, a clip
        # per fold chosen on the test folds, so 0.75 stays (docs/real-video.md)
        "motion_weight": 0.75,
        # the forest also scores the frame's left and right edges (a 16:9 frame's centre crop is half its
        # width): forest alone, video AUC 0.807 -> 0.826 and accuracy 0.668 -> 0.72 (docs/real-video.md)
        "motion_crops": 3,
    },
    # Real surveillance video on the published Kinetics-400 I3D RGB weights (`i3dmtn weights fetch`): the
    # backbone as DeepMind trained it, frozen; its features computed once per clip (`i3dmtn features
    # --i3d_weights`) and a small head trained on them (`i3dmtn train --features`) in seconds. What it sees
    # of people carries over to scenes it never saw (docs/real-video.md, "Kinetics-400 I3D weights").
    "kinetics": {
        "name": "kinetics",
        "frame_rate": 15.0,  # every camera resampled to 15 fps: a snippet is 2.1 s at any source rate
        # S: 32 frames, 2.1 s, one pass of the backbone (16-frame snippets scored 0.81 against 0.90 on a fold's
        # validation clips: the published model pads in time, and half a second of a blow is too little)
        "clip_length": 32,
        "num_snippets": 1,  # K: the snippet is the context (the length of the clips such data sets hold)
        # the centre 256 x 256 of the short side: the network is fully convolutional, and people in surveillance
        # frames are small (two fold seeds: 0.910 / 0.799 and 0.922 / 0.856 against 0.904 / 0.816 and 0.901 / 0.820
        # at the published 224; 192 and 160 px gave less), at 1.31 times the backbone's cost on the device
        "frame_size": 256,
        "resize_short_side": 256,
        # camera frames shrunk by linear interpolation: 0.3 ms of CPU a 640 x 360 frame against 2.3 for "area",
        # 12 % of 2 cores at 8 cameras; the same accuracy (fold seed 0: 0.925 / 0.856 against 0.924 / 0.852;
        # seed 1: 0.924 / 0.856 against 0.930 / 0.856; docs/real-video.md)
        "interpolation": "linear",
        "motion_filters": 0.0,  # the stem is the published one
        "mtn_hidden_dim": 64,  # a small head on 1024-d features: a few hundred clips
        "mil_attention_dim": 32,
        "scorer_layers": 1,
        "dropout": 0.5,
        # the head's input standardised with the training features' statistics: the rounds' validation AUC
        # 0.922 against 0.906 unstandardised (two fold seeds' means), test 0.928 against 0.916, accuracy 0.865
        # against 0.831; standardised, the head trains best for 30 epochs at 3e-4 (15 at 1e-4 suited the raw
        # features: standardised, validation 0.909 after 15 epochs at 1e-4, 0.920 after 30; docs/real-video.md)
        "standardize_features": True,
        "epochs": 30,
        "batch_size": 16,
        "learning_rate": 3e-4,
        "weight_decay": 1e-4,
        "warmup_epochs": 1,
        "grad_accum_steps": 1,
        "amp": "off",
        "early_stopping_patience": 0,  # a small validation split is too noisy to stop on
        "best_checkpoint": "last",
        "num_workers": 0,
        "snippet_sampling": "window",  # K consecutive snippets, as the device's ring holds
        "topk_ratio": 1.0,  # trimmed clips: a fight clip is a fight throughout
        "loss_smoothness_weight": 0.0,
        "loss_sparsity_weight": 0.0,
    },
    # Tiny model and frames: trains on a CPU in a few minutes and still sees the synthetic fights (the
    # synthetic figures span a good part of a 64 px frame).
    "debug": {
        "name": "debug",
        "clip_length": 8,
        "num_snippets": 8,  # 8 x 8 = 64 frames per video
        "frame_size": 64,
        "resize_short_side": 64,
        "width_multiplier": 0.125,  # stem 8 channels, 128-d features
        "mtn_hidden_dim": 32,
        "mil_attention_dim": 16,
        "dropout": 0.1,  # a tiny model on a tiny set underfits before it overfits
        # from scratch in a few hundred steps, 0.01 leaves the eval-mode running statistics far behind the
        # weights (measured: snippet AUC ~0.6 at 0.01 vs 0.99 at 0.1 with the same training)
        "bn_momentum": 0.1,
        "epochs": 3,
        "batch_size": 4,
        "learning_rate": 1e-3,  # from scratch, no pretrained weights to protect
        "weight_decay": 0.0,
        "warmup_epochs": 0,
        "grad_accum_steps": 1,
        "amp": "off",
        "early_stopping_patience": 0,
        "num_workers": 0,  # no worker processes on 2 shared CI cores
        "augment_crop_jitter": 4,
        "augment_zoom": 0.125,
        # the synthetic videos are annotated per frame: dense supervision, what the snippet scores need
        "frame_loss_weight": 1.0,
        # the device scores K consecutive snippets; short synthetic clips gain nothing from RTFM's segments,
        # and training on the spacing the device uses keeps train and deploy the same function
        "snippet_sampling": "window",
    },
}
