"""Tables in, tables out: metrics, the one bootstrap, paired differences, calibration."""
