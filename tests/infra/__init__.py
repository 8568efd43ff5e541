"""Bicep parsed and held against the code."""
