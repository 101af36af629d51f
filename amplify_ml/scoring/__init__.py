"""Using what the lake and the models know: batch scores, supply plans, partner benchmarks."""
