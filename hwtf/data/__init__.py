"""Handwriting data: IAM-OnDB, the synthetic default set, preprocessing, tf.data."""
