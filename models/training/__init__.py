"""Training of the TSM and AMV-ML, and the data they read."""
