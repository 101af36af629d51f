"""amplify_ml."""
