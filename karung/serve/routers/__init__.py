"""One router per resource: score, bank, sellers, admin, ops."""
