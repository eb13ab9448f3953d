"""Helpers shipped for users and for this package's tests and demo: the Aspects xAPI table and a seeder."""
