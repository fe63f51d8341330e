"""Training recipe: synthesis, fine-tuning, evaluation and export. Imports vision, never serve."""
