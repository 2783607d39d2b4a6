"""Shared building blocks of the Loan Management System services.

Nothing in this package imports a service; services import from here.
"""
