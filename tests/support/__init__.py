"""Helpers shared by the test folders (functions and fixture definitions); ``conftest.py`` files only bind fixtures."""
