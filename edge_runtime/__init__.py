"""Device side: frame sources, the preprocessing contract, streaming scoring, backends, events and MQTT.

Never imports torch or the workstation packages (training, export, calibration): a device installs only this.
"""
