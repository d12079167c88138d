"""The multi-person pose model, converted to OpenVINO without TensorFlow.

:mod:`training.pose.tfjs_graph` turns a TF.js graph model into a GraphDef with the messages of
:mod:`training.pose.tf_proto`.
"""
