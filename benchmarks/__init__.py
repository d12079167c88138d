"""Speed and accuracy benchmarks; each prints its numbers and ratios against a baseline run in the same process."""
