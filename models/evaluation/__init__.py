"""Evaluation: Top1@R, Top10@R, category accuracy, geometric scores, reports."""
