"""Moderator review: the queue the scorer feeds, the web UI, the loop to bank and training."""
