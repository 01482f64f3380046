"""Province-scale benchmarks: a data generator, the hand-written DuckDB floor and a pandas baseline."""
