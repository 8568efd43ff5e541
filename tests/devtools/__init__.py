"""Our development tools: the Graph emulator and the benchmark smoke run."""
