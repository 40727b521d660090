"""HTTP routes: each parses, calls the pipeline's functions and formats their results."""
