"""Data quality: the upstream drop landed, the raw files checked, the GX gates and their verdicts."""
