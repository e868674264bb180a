"""A Django project for td_web's adapter tests: views for every behaviour under test."""
