"""Scripts run by hand (benchmarks, the soak, recording a machine's probe); each says how at its top."""
