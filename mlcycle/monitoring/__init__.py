"""Monitoring and retraining: the live record of each model and when it starts its replacement."""
