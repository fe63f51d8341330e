"""The scoring service, stores and moderator UI. Imports vision, never training."""
