"""Training, backtesting, explaining and registering the four models."""
