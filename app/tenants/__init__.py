"""Tenants and their credentials as data: the admin API and its CLI twins."""
