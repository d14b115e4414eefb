"""Routing: from a request to the ordered endpoints to try, and whether a prompt fits each."""
